#!/usr/bin/env bash
# imaptest.sh: Dovecot's imaptest (../shared/imaptest, see its README.md) against a fresh
# `letterbox serve`: every compliance script, then the stress mode with state tracking.
# Run from the repository root (`make imaptest`, part of `make test`).
#
# One `letterbox serve` on free loopback ports with a data directory in a temporary
# directory, the accounts user1 and user1..user100@example.test (password "pass"), then
#   run scripts 127.0.0.1 PORT user1 pass              every group not in SKIP below
#   run stress 127.0.0.1 PORT 'user%d@example.test' pass users=100 clients=50 secs=60 [MODE]
# once for each MODE of IMAPTEST_STRESS, one after the other on the same server and
# accounts: plain (no option), own_flags (each flag and keyword has one owning client,
# so imaptest checks that every STORE is answered with exactly the flags it set),
# own_msgs (each message has one owning client, so it checks that what a client expunges
# or changes is what it sees) and qresync (CONDSTORE/QRESYNC enabled, modseqs tracked).
# Not checkpoint=: it panics this imaptest release. The server is stopped by its PID.
#
# It fails if a group fails that is not in KNOWN_FAIL, if a group in KNOWN_FAIL passes
# (the list only shrinks: take it off), or if any stress run reports an error.
# Without ../shared/imaptest it is skipped, loudly; under CI (CI=true) it fails.
#
# Settings (environment): LETTERBOX_BIN (bin/letterbox), IMAPTEST_DIR (../shared/imaptest),
# IMAPTEST_STRESS_SECS (60, for each stress run), IMAPTEST_STRESS (the stress modes, in
# order: "plain own_flags own_msgs qresync"), IMAPTEST_KEEP=1 keeps the temporary directory.
set -uo pipefail

BIN=${LETTERBOX_BIN:-bin/letterbox}
IMAPTEST_DIR=${IMAPTEST_DIR:-../shared/imaptest}
SECS=${IMAPTEST_STRESS_SECS:-60}
STRESS=${IMAPTEST_STRESS:-plain own_flags own_msgs qresync}
RUN="$IMAPTEST_DIR/run"

# Groups that fail for a feature not built yet, each with why. docs/imap.md has the wire
# evidence. Never add a failure of ours here: fix it.
declare -A KNOWN_FAIL=()

# Scripts where imaptest and an RFC disagree; we follow the RFC. None today.
declare -A SKIP=()

if [ ! -x "$RUN" ]; then
	if [ "${CI:-}" = true ]; then
		echo "FAIL imaptest: $RUN not found; CI needs Dovecot's imaptest there"
		exit 1
	fi
	echo "*** SKIPPED imaptest: $RUN not found (Dovecot's imaptest is not on this machine) ***"
	exit 0
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if [ "${IMAPTEST_KEEP:-}" = 1 ]; then echo "imaptest: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# imaptest's 50 stress clients log in to random accounts from one address: no per-account
# session cap (limits.max_userip_connections, 10 by default) may refuse them.
cat >"$tmp/letterbox.yaml" <<'EOF'
limits:
  max_userip_connections: 0
EOF
"$BIN" serve --config "$tmp/letterbox.yaml" --data "$tmp/data" --imap-addr 127.0.0.1:0 \
	--pop3-addr "" --lmtp-addr "" --http-addr "" >"$tmp/server.log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*msg=listening protocol=imap addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -n1)
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "FAIL imaptest: letterbox serve did not start:"
	sed 's/^/    /' "$tmp/server.log"
	exit 1
fi

for user in user1 $(seq -f 'user%g@example.test' 1 100); do
	if ! echo pass | "$BIN" user add "$user" --password-stdin --data "$tmp/data" >/dev/null 2>"$tmp/useradd.err"; then
		echo "FAIL imaptest: user add $user: $(cat "$tmp/useradd.err")"
		exit 1
	fi
done

groups=()
for g in $(ls "$IMAPTEST_DIR/tests" | grep -v '\.mbox$'); do
	if [ -n "${SKIP[$g]:-}" ]; then
		echo "SKIP $g: ${SKIP[$g]}"
	else
		groups+=("$g")
	fi
done

status=0
echo "imaptest scripts against 127.0.0.1:$port"
"$RUN" scripts 127.0.0.1 "$port" user1 pass "${groups[@]}" >"$tmp/scripts.out" 2>&1
while IFS= read -r line; do
	case "$line" in
	"PASS "*)
		g=${line#PASS }
		g=${g%% *}
		if [ -n "${KNOWN_FAIL[$g]:-}" ]; then
			echo "FAIL $g: on the known-failures list but passes now; take it off KNOWN_FAIL in $0"
			status=1
		else
			echo "$line"
		fi
		;;
	"FAIL "*)
		g=${line#FAIL }
		g=${g%%:*}
		if [ -n "${KNOWN_FAIL[$g]:-}" ]; then
			echo "KNOWN FAIL $g: ${KNOWN_FAIL[$g]}"
		else
			echo "$line"
			status=1
		fi
		;;
	*) echo "$line" ;;
	esac
done <"$tmp/scripts.out"

for mode in $STRESS; do
	opts=()
	case $mode in
	plain) ;;
	own_flags | own_msgs | qresync) opts=("$mode") ;;
	*)
		echo "FAIL imaptest: unknown stress mode $mode in IMAPTEST_STRESS"
		status=1
		continue
		;;
	esac
	echo "imaptest stress $mode: 100 users, 50 clients, $SECS s"
	out="$tmp/stress-$mode.out"
	if "$RUN" stress 127.0.0.1 "$port" 'user%d@example.test' pass users=100 clients=50 secs="$SECS" "${opts[@]}" >"$out" 2>&1; then
		tail -n 1 "$out"
	else
		echo "FAIL stress $mode:"
		grep -iE '^error|error:|panic|disconnected' "$out" | head -n 20
		tail -n 2 "$out"
		status=1
	fi
	kill -0 "$pid" 2>/dev/null || break # reported below
done

if ! kill -0 "$pid" 2>/dev/null; then
	echo "FAIL imaptest: the server died during the run:"
	tail -n 20 "$tmp/server.log" | sed 's/^/    /'
	status=1
elif grep -q 'recovered from a panic' "$tmp/server.log"; then
	echo "FAIL imaptest: the server recovered from a panic:"
	grep -m3 'recovered from a panic' "$tmp/server.log" | cut -c1-400 | sed 's/^/    /'
	status=1
fi
[ "$status" -eq 0 ] && echo "imaptest: OK" || echo "imaptest: FAILED"
exit "$status"
