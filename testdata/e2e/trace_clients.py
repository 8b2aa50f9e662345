#!/usr/bin/env python3
"""Drives a running Letterbox (serve --trace DIR, TLS configured) with every way of logging
in that its traces must mask, using Python's standard library. Used by the end-to-end Go
test cmd/letterbox/trace_test.go, which then reads the traces.

    trace_clients.py LMTP_PORT POP3_PORT IMAP_PORT USER PASSWORD

One session each: LMTP delivery of a large message; POP3 USER/PASS with RETR; POP3 STLS then
USER/PASS; IMAP LOGIN (quoted) with SELECT and FETCH BODY[]; IMAP AUTHENTICATE PLAIN; IMAP
STARTTLS then LOGIN; IMAP LOGIN with synchronizing literals. Exits non-zero on the first
thing that does not work.
"""
import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import sys
from email.message import EmailMessage


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed test certificate
    return ctx


def main():
    lmtp_port, pop3_port, imap_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    user, password = sys.argv[4], sys.argv[5]

    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = user
    msg["Subject"] = "Traced"
    msg["Message-ID"] = "<trace.e2e@letterbox.test>"
    msg.set_content("BODYMARKER first line\n" + "filler line of the body\n" * 400)
    with smtplib.LMTP("127.0.0.1", lmtp_port) as lmtp:
        lmtp.sendmail("alice@example.org", [user], msg.as_bytes())

    pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
    pop.user(user)
    pop.pass_(password)
    _, lines, _ = pop.retr(1)
    if b"BODYMARKER first line" not in lines:
        fail("RETR 1 is not the delivered message")
    pop.quit()

    pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
    pop.stls(insecure())
    pop.user(user)
    pop.pass_(password)
    pop.stat()
    pop.quit()

    imap = imaplib.IMAP4("127.0.0.1", imap_port)
    imap.login(user, password)
    imap.select("INBOX")
    typ, data = imap.fetch("1", "(BODY[])")
    if typ != "OK" or b"BODYMARKER" not in data[0][1]:
        fail(f"FETCH BODY[]: {typ} {data!r:.200}")
    imap.logout()

    imap = imaplib.IMAP4("127.0.0.1", imap_port)
    imap.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode())
    imap.logout()

    imap = imaplib.IMAP4("127.0.0.1", imap_port)
    imap.starttls(insecure())
    imap.login(user, password)
    imap.logout()

    # LOGIN with both arguments as synchronizing literals (RFC 3501 §4.3), by hand.
    s = socket.create_connection(("127.0.0.1", imap_port), timeout=10)
    f = s.makefile("rwb")
    f.readline()  # greeting
    u, p = user.encode(), password.encode()
    for chunk in (b"L1 LOGIN {%d}\r\n" % len(u), u + b" {%d}\r\n" % len(p), p + b"\r\n"):
        f.write(chunk)
        f.flush()
        if chunk.endswith(b"}\r\n"):
            line = f.readline()
            if not line.startswith(b"+"):
                fail(f"LOGIN literal not invited: {line!r}")
    line = f.readline()
    while line.startswith(b"* "):
        line = f.readline()
    if not line.startswith(b"L1 OK"):
        fail(f"LOGIN with literals: {line!r}")
    f.write(b"L2 LOGOUT\r\n")
    f.flush()
    f.read()
    s.close()


if __name__ == "__main__":
    main()
