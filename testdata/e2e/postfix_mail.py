#!/usr/bin/env python3
"""Sends mail through a Postfix that delivers to Letterbox over LMTP, then reads it with
POP3 and IMAP. Used by cmd/letterbox/postfix_test.go.

    postfix_mail.py SMTP_PORT POP3_PORT IMAP_PORT

alice@example.test (password alice-pw) sends one message to bob@example.test (password
bob-pw) and to nobody@example.test, who does not exist. Bob must see the message through
POP3 and IMAP with Postfix's Received field and Letterbox's Delivered-To and Return-Path;
Alice must get Postfix's bounce for nobody, which quotes Letterbox's 550 5.1.1.

Exits non-zero with a message on the first thing that is not as expected.
"""
import email
import email.policy
import imaplib
import poplib
import smtplib
import sys
import time

smtp_port, pop3_port, imap_port = (int(a) for a in sys.argv[1:])
MESSAGE_ID = "<postfix-e2e@example.test>"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def pop3_messages(user, password):
    """Every message in user's maildrop, parsed, through POP3."""
    p = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
    p.user(user)
    p.pass_(password)
    count, _ = p.stat()
    msgs = [email.message_from_bytes(b"\r\n".join(p.retr(i)[1]), policy=email.policy.default)
            for i in range(1, count + 1)]
    p.quit()
    return msgs


def wait_pop3(user, password, what):
    """Waits for Postfix to deliver (its queue manager works on its own schedule)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msgs = pop3_messages(user, password)
        if msgs:
            return msgs
        time.sleep(0.2)
    fail(f"{what} never reached {user}")


smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
smtp.ehlo("client.example.test")
refused = smtp.sendmail(
    "alice@example.test", ["bob@example.test", "nobody@example.test"],
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: through Postfix\r\n"
    b"Message-ID: " + MESSAGE_ID.encode() + b"\r\n"
    b"\r\n"
    b"Hello Bob, this came through Postfix.\r\n")
smtp.quit()
if refused:
    fail(f"Postfix refused {refused} at SMTP time")

# Bob, through POP3: one message, with the trace fields of both servers.
msgs = wait_pop3("bob@example.test", "bob-pw", "the message")
if len(msgs) != 1:
    fail(f"bob has {len(msgs)} messages over POP3, want 1")
m = msgs[0]
if m["Message-ID"] != MESSAGE_ID or m["Subject"] != "through Postfix":
    fail(f"POP3 message: {m['Message-ID']} {m['Subject']}")
if "(Postfix)" not in str(m["Received"]):
    fail(f"no Received field from Postfix: {m['Received']}")
if m["Delivered-To"] != "bob@example.test" or m["Return-Path"] != "<alice@example.test>":
    fail(f"trace fields: Delivered-To {m['Delivered-To']}, Return-Path {m['Return-Path']}")
if "came through Postfix" not in m.get_content():
    fail("POP3 body differs")

# Bob, through IMAP: the same message in INBOX.
imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
imap.login("bob@example.test", "bob-pw")
typ, data = imap.select("INBOX", readonly=True)
if typ != "OK" or data[0] != b"1":
    fail(f"IMAP SELECT INBOX: {typ} {data}")
typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DELIVERED-TO RECEIVED)])")
if typ != "OK":
    fail(f"IMAP FETCH: {typ} {data}")
header = data[0][1].decode()
for want in (MESSAGE_ID, "Delivered-To: bob@example.test", "(Postfix)"):
    if want not in header:
        fail(f"IMAP header lacks {want!r}: {header!r}")
imap.logout()

# Alice: Postfix's bounce for nobody@example.test, quoting Letterbox's RCPT refusal.
msgs = wait_pop3("alice@example.test", "alice-pw", "the bounce")
bounce = msgs[0]
if "Undelivered Mail" not in bounce["Subject"] or bounce["Return-Path"] != "<>":
    fail(f"not a bounce: {bounce['Subject']} from {bounce['Return-Path']}")
text = bounce.as_string()
if "nobody@example.test" not in text or "550 5.1.1" not in text:
    fail(f"the bounce does not quote Letterbox's 550 5.1.1 for nobody:\n{text}")
print("ok")
