#!/usr/bin/env python3
"""Drives a running Letterbox with clients from Python's standard library: smtplib.LMTP to
deliver, poplib to download. Used by the end-to-end Go test (cmd/letterbox/clients_test.go).

    pop3_clients.py LMTP_PORT POP3_PORT USER PASSWORD

Exits non-zero with a message on the first thing that is not as a POP3 user expects.
"""
import email
import email.policy
import poplib
import smtplib
import sys
from email.message import EmailMessage


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def build(subject, body, n):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = "Bob <bob@example.net>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 15 Jan 2024 09:30:00 +0000"
    msg["Message-ID"] = f"<{n}.e2e@letterbox.test>"
    msg.set_content(body)
    return msg.as_bytes()


def main():
    lmtp_port, pop3_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    msgs = [build("Plain hello", "Hello Bob,\n\nall good here.\n", 1),
            build("Dots", "Line one\n.\n..leading dots\n.end\n", 2),
            build("Grüße aus Köln", "Viele Grüße!\n", 3)]

    with smtplib.LMTP("127.0.0.1", lmtp_port) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        for raw in msgs:
            refused = lmtp.sendmail("alice@example.org", [user, "nobody@nowhere.test"], raw)
            if "nobody@nowhere.test" not in refused or user in refused:
                fail(f"LMTP per-recipient status: refused={refused}")

    pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
    caps = pop.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "SASL"):
        if cap not in caps:
            fail(f"CAPA lacks {cap}: {sorted(caps)}")
    pop.user(user)
    pop.pass_(password)
    count, octets = pop.stat()
    if count != len(msgs):
        fail(f"STAT count {count}, want {len(msgs)}")
    _, listing, _ = pop.list()
    sizes = {int(n): int(s) for n, s in (l.split() for l in listing)}
    _, uidls, _ = pop.uidl()
    uids = {int(n): u.decode() for n, u in (l.split() for l in uidls)}
    if len(set(uids.values())) != len(msgs):
        fail(f"UIDLs not unique: {uids}")
    for n in range(1, count + 1):
        _, lines, got_octets = pop.retr(n)
        raw = b"".join(line + b"\r\n" for line in lines)
        if len(raw) != sizes[n]:
            fail(f"message {n}: LIST says {sizes[n]} octets, RETR sent {len(raw)}")
        sent = msgs[n - 1]
        if not raw.endswith(sent):
            fail(f"message {n} differs from what was delivered")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        if parsed["Message-ID"] != f"<{n}.e2e@letterbox.test>":
            fail(f"message {n} has Message-ID {parsed['Message-ID']}")
    pop.dele(1)
    pop.quit()

    pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
    pop.user(user)
    pop.pass_(password)
    _, uidls, _ = pop.uidl()
    after = {int(n): u.decode() for n, u in (l.split() for l in uidls)}
    if sorted(after.values()) != sorted(v for k, v in uids.items() if k != 1):
        fail(f"UIDLs after DELE 1 + QUIT: {after}, before {uids}")
    pop.quit()
    # Hand the UIDLs to the caller so it can compare what curl sees.
    print(" ".join(after[k] for k in sorted(after)))


if __name__ == "__main__":
    main()
