#!/usr/bin/env bash
# compare.sh: Letterbox and Dovecot (maildir and mdbox) side by side on this machine, with
# the same corpus and the same client (letterbox-bench); prints one table of medians and
# ratios. Run from the repository root as root (`make bench-compare`): it installs Debian's
# Dovecot packages if missing and runs Dovecot as root with its own configuration.
#
# Everything lives in one temporary directory: two Dovecot instances (their own config,
# passwd-file, base_dir, state_dir, logs; mail stored as the unprivileged user nobody) and
# one `letterbox serve` with its own data directory, all on free loopback ports. No system
# service is started, stopped or reconfigured; the processes started here are stopped by
# their PIDs on exit.
#
# The server letterbox-pg is Letterbox on PostgreSQL: the same binary run through
# scripts/pg-letterbox (a database of its own for its data directory), in a private cluster
# that scripts/pg-test-cluster starts for the run and removes after it (fsync on, as
# SQLite's synchronous=FULL and Dovecot's mail_fsync pay for durability too). Given
# LETTERBOX_TEST_PG_URL, that cluster is used instead.
#
# Settings (environment):
#   BENCH_MESSAGES       corpus size loaded into each INBOX, and messages per append rep (10000)
#   BENCH_LMTP_MESSAGES  messages per lmtp repetition (BENCH_MESSAGES)
#   BENCH_CONCURRENCY    concurrent LMTP senders (4)
#   BENCH_IDLERS         sessions in IDLE for idle-fanout (120)
#   BENCH_CLIENTS        clients of the mixed load (8), BENCH_DURATION its length (10s)
#   BENCH_REPS           repetitions of each workload (3), each on every server in turn
#   BENCH_WORKLOADS      workloads after the load (all: append append-nagle fetch-meta fetch-body
#                        search-text qresync sort-date sort-arrival sort-expunge thread-refs pop3-download lmtp idle-fanout mixed)
#   BENCH_SERVERS        servers, in the order they alternate (letterbox dovecot-maildir dovecot-mdbox;
#                        also letterbox-pg)
#   BENCH_OUT            directory for the JSON results and table.md (in the temp dir)
#   BENCH_KEEP=1         keep the temp dir (data, configs, logs) afterwards
#   LETTERBOX_BIN        the server binary (bin/letterbox)
#   LETTERBOX_BASE_BIN   a second Letterbox binary, the server letterbox-base (for example
#                        main's build), to compare a branch against in the same run:
#                        BENCH_SERVERS="letterbox letterbox-base dovecot-mdbox"
set -euo pipefail

BENCH_MESSAGES=${BENCH_MESSAGES:-10000}
BENCH_LMTP_MESSAGES=${BENCH_LMTP_MESSAGES:-$BENCH_MESSAGES}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-4}
BENCH_IDLERS=${BENCH_IDLERS:-120}
BENCH_CLIENTS=${BENCH_CLIENTS:-8}
BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-append append-nagle fetch-meta fetch-body search-text qresync sort-date sort-arrival sort-expunge thread-refs pop3-download lmtp idle-fanout mixed}
BENCH_SERVERS=${BENCH_SERVERS:-letterbox dovecot-maildir dovecot-mdbox}
LETTERBOX_BIN=${LETTERBOX_BIN:-bin/letterbox}
PASSWORD=bench-secret
USERS="bench@example.test:$PASSWORD,sink@example.test:$PASSWORD"

log() { echo "compare: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: Dovecot is installed with apt-get and started as root"
[ -f go.mod ] && [ -d cmd/letterbox-bench ] || die "run from the repository root"

# letterbox-pg needs a PostgreSQL cluster: a private one for this run, unless given.
case " $BENCH_SERVERS " in
*" letterbox-pg "*)
	if [ -z "${LETTERBOX_TEST_PG_URL:-}" ]; then
		log "starting a private PostgreSQL cluster for letterbox-pg"
		PG_TEST_CLUSTER_OPTIONS="-c fsync=on -c max_connections=400 ${PG_TEST_CLUSTER_OPTIONS:-}" \
			exec scripts/pg-test-cluster "$0" "$@"
	fi
	;;
esac

# Debian's Dovecot, without letting the package start its system service (a temporary
# policy-rc.d, only if none exists).
pkgs="dovecot-imapd dovecot-pop3d dovecot-lmtpd"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
	log "installing $pkgs"
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy=/usr/sbin/policy-rc.d
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >&2
	if [ -n "$policy" ]; then rm -f "$policy"; fi
fi
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)

TMP=$(mktemp -d /tmp/letterbox-bench.XXXXXX)
chmod 755 "$TMP" # Dovecot's login and mail processes run unprivileged and traverse it
OUT=${BENCH_OUT:-$TMP/results}
mkdir -p "$OUT"
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

log "building letterbox-bench${LETTERBOX_BIN:+ and $LETTERBOX_BIN}"
go build -o "$TMP/letterbox-bench" ./cmd/letterbox-bench
[ -x "$LETTERBOX_BIN" ] || go build -o "$LETTERBOX_BIN" ./cmd/letterbox
BENCH=$TMP/letterbox-bench

# wait_port HOST:PORT: up to 10 s for a listener.
wait_port() {
	local host=${1%:*} port=${1##*:}
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on $1"
	return 1
}

declare -A IMAP POP3 LMTP SPID
read -r -a ports <<<"$("$BENCH" free-ports 15 | tr '\n' ' ')"
i=0
for s in letterbox letterbox-base letterbox-pg dovecot-maildir dovecot-mdbox; do
	IMAP[$s]=127.0.0.1:${ports[$i]}
	POP3[$s]=127.0.0.1:${ports[$((i + 1))]}
	LMTP[$s]=127.0.0.1:${ports[$((i + 2))]}
	i=$((i + 3))
done

# start_letterbox NAME [WRAPPER]: a letterbox serve under $TMP/NAME; WRAPPER (such as
# scripts/pg-letterbox) runs the binary for every command, given it as PG_LETTERBOX_BIN.
# letterbox-base runs LETTERBOX_BASE_BIN instead of LETTERBOX_BIN.
start_letterbox() {
	local name=$1 dir=$TMP/$1 lb=$LETTERBOX_BIN
	if [ "$name" = letterbox-base ]; then
		[ -x "${LETTERBOX_BASE_BIN:-}" ] || die "letterbox-base needs LETTERBOX_BASE_BIN, an executable"
		lb=$LETTERBOX_BASE_BIN
	fi
	if [ -n "${2:-}" ]; then
		lb=$2
		export PG_LETTERBOX_BIN=$LETTERBOX_BIN
	fi
	mkdir -p "$dir"
	for u in bench@example.test sink@example.test; do
		"$lb" --data "$dir" user add "$u" --password "$PASSWORD" >/dev/null
	done
	# The per-user and per-IP connection limits are raised for idle-fanout (all idlers are
	# one user on 127.0.0.1), as Dovecot's mail_max_userip_connections is below.
	LETTERBOX_LIMITS_MAX_USERIP_CONNECTIONS=100000 LETTERBOX_LIMITS_MAX_CONNECTIONS_PER_IP=100000 \
		LETTERBOX_LIMITS_MAX_CONNECTIONS=100000 \
		"$lb" --data "$dir" --log-level warn serve --http-addr "" \
		--imap-addr "${IMAP[$name]}" --pop3-addr "${POP3[$name]}" --lmtp-addr "${LMTP[$name]}" \
		>"$dir/letterbox.log" 2>&1 &
	PIDS+=($!)
	SPID[$name]=$!
	wait_port "${IMAP[$name]}" && wait_port "${POP3[$name]}" && wait_port "${LMTP[$name]}" ||
		{ cat "$dir/letterbox.log" >&2; die "$name did not start"; }
}

# start_dovecot NAME FORMAT: a Dovecot with its own everything under $TMP/NAME; mail is
# stored as nobody in homes under that directory.
start_dovecot() {
	local name=$1 format=$2 dir=$TMP/$1
	mkdir -p "$dir/run" "$dir/state" "$dir/home"
	local uid gid
	uid=$(id -u nobody) gid=$(id -g nobody)
	: >"$dir/passwd"
	for u in bench@example.test sink@example.test; do
		mkdir -p "$dir/home/$u"
		echo "$u:{PLAIN}$PASSWORD:$uid:$gid::$dir/home/$u::" >>"$dir/passwd"
	done
	chown -R "$uid:$gid" "$dir/home"
	local imap_port=${IMAP[$name]##*:} pop3_port=${POP3[$name]##*:} lmtp_port=${LMTP[$name]##*:}
	cat >"$dir/dovecot.conf" <<CONF
# letterbox-bench: a private Dovecot on loopback ports; nothing shared with the system's.
instance_name = letterbox-bench-$name
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/passwd
}
mail_location = $format:~/$format
# Dovecot's defaults, stated: fsync where the mail format needs it for durability.
mail_fsync = optimized
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
  # Dovecot's documented high-performance login mode (one process, many clients).
  service_count = 0
  client_limit = 10000
  process_min_avail = 1
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  client_limit = 10000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
service imap {
  process_limit = 10000
}
default_client_limit = 20000
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
CONF
	"$DOVECOT" -F -c "$dir/dovecot.conf" >"$dir/stdout.log" 2>&1 &
	PIDS+=($!)
	SPID[$name]=$!
	wait_port "${IMAP[$name]}" && wait_port "${POP3[$name]}" && wait_port "${LMTP[$name]}" ||
		{ cat "$dir/dovecot.log" "$dir/stdout.log" >&2; die "$name did not start"; }
}

for s in $BENCH_SERVERS; do
	case $s in
	letterbox) start_letterbox letterbox ;;
	letterbox-base) start_letterbox letterbox-base ;;
	letterbox-pg) start_letterbox letterbox-pg scripts/pg-letterbox ;;
	dovecot-maildir) start_dovecot "$s" maildir ;;
	dovecot-mdbox) start_dovecot "$s" mdbox ;;
	*) die "unknown server $s (letterbox, letterbox-base, letterbox-pg, dovecot-maildir, dovecot-mdbox)" ;;
	esac
	log "$s: IMAP ${IMAP[$s]} POP3 ${POP3[$s]} LMTP ${LMTP[$s]}"
done

# bench SERVER WORKLOAD MESSAGES REPS RUN: one letterbox-bench run, its JSON in $OUT
# (SERVER.WORKLOAD.RUN.json; the table merges the runs of a server and workload).
bench() {
	local s=$1 w=$2 n=$3 reps=$4 run=$5
	"$BENCH" --label "$s" --imap "${IMAP[$s]}" --pop3 "${POP3[$s]}" --lmtp "${LMTP[$s]}" \
		--users "$USERS" --deliver-to sink@example.test --workload "$w" --messages "$n" \
		--reps "$reps" --concurrency "$BENCH_CONCURRENCY" --idlers "$BENCH_IDLERS" \
		--server-pid "${SPID[$s]}" --clients "$BENCH_CLIENTS" --duration "$BENCH_DURATION" \
		--json "$OUT/$s.$w.$run.json" >&2 && return
	log "$s $w failed (see the table)"
	return 1
}

status=0
for s in $BENCH_SERVERS; do
	bench "$s" load "$BENCH_MESSAGES" 1 1 || status=1
done
# Repetition by repetition, each server in turn: a change in the machine's load during
# the run (other processes, the page cache, a neighbour on the host) then falls on every
# server alike instead of on the one whose block of repetitions it happened in, which
# moved ratios by 20 % and more between runs.
for w in $BENCH_WORKLOADS; do
	n=$BENCH_MESSAGES
	if [ "$w" = lmtp ]; then n=$BENCH_LMTP_MESSAGES; fi
	for r in $(seq "$BENCH_REPS"); do
		for s in $BENCH_SERVERS; do
			bench "$s" "$w" "$n" 1 "$r" || status=1
		done
	done
done

pg_version=
if [ -n "${LETTERBOX_TEST_PG_URL:-}" ] && [[ " $BENCH_SERVERS " == *" letterbox-pg "* ]]; then
	for d in /usr/local/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/postgres" ]; then pg_version="; $("$d/postgres" --version)"; break; fi
	done
fi
files=()
for s in $BENCH_SERVERS; do
	for f in "$OUT/$s".*.json; do [ -e "$f" ] && files+=("$f"); done
done
{
	echo "BENCH_MESSAGES=$BENCH_MESSAGES BENCH_LMTP_MESSAGES=$BENCH_LMTP_MESSAGES BENCH_CONCURRENCY=$BENCH_CONCURRENCY BENCH_IDLERS=$BENCH_IDLERS BENCH_CLIENTS=$BENCH_CLIENTS BENCH_DURATION=$BENCH_DURATION BENCH_REPS=$BENCH_REPS; $("$DOVECOT" --version | sed 's/^/Dovecot /'); Letterbox $("$LETTERBOX_BIN" version 2>/dev/null | head -1)$pg_version"
	echo
	"$BENCH" table "${files[@]}"
} | tee "$OUT/table.md"
if [ -n "${BENCH_OUT:-}" ]; then log "results in $OUT"; fi
exit $status
