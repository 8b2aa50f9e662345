#!/usr/bin/env python3
"""Drives a running Letterbox the way a mail program does, with clients from Python's standard
library: smtplib.LMTP delivers, imaplib reads, files and flags, poplib takes a message away
behind IMAP's back. Used by the end-to-end Go test (cmd/letterbox/imap_clients_test.go), and a
readable tour of what the IMAP server does:

    imap_clients.py LMTP_PORT IMAP_PORT POP3_PORT USER PASSWORD

The user must exist and have an empty mailbox. Exits non-zero with a message on the first thing
that is not as an IMAP user expects.
"""
import email
import email.header
import email.policy
import imaplib
import poplib
import re
import smtplib
import socket
import sys
import time
from email.message import EmailMessage

HOST = "127.0.0.1"
# The contract promises live updates within 1 s; allow twice that before calling it lost.
LIVE_UPDATE_DEADLINE = 2.0


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---------------------------------------------------------------------------------------------
# The messages

def new_message(n, subject, body, **content):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice Example <alice@example.org>"
    msg["To"] = "Bob <bob@example.net>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 15 Jan 2024 09:30:00 +0000"
    msg["Message-ID"] = f"<{n}.imap-e2e@letterbox.test>"
    msg.set_content(body, **content)
    return msg


def messages():
    plain = new_message(1, "Plain hello", "Hello Bob,\n\nthe quarterly numbers are in.\n")
    report = new_message(2, "Report with attachment", "The report is attached.\n")
    report.add_attachment(b"%PDF-1.4 not really a PDF\x00\x01\x02" * 20, maintype="application",
                          subtype="pdf", filename="report.pdf")
    # Latin-1 in quoted-printable, as older mail programs still send: SEARCH must decode it.
    greeting = new_message(3, "Grüße aus Köln", "Viele Grüße vom Rhein!\n", charset="iso-8859-1", cte="quoted-printable")
    return [m.as_bytes() for m in (plain, report, greeting)]


def deliver(lmtp_port, user, raw):
    with smtplib.LMTP(HOST, lmtp_port) as lmtp:
        refused = lmtp.sendmail("alice@example.org", [user], raw)
        check(not refused, f"LMTP refused {refused}")


# ---------------------------------------------------------------------------------------------
# A small reader for IMAP data (RFC 3501 §4): imaplib hands FETCH and LIST responses back as
# bytes with literals split out; this turns them into Python values. Atoms become str, strings
# bytes, NIL None, parenthesised lists lists.

TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\{(\d+)\}$|([^\s()"{}\[\]]+(?:\[[^\]]*\])?(?:<\d+>)?))')


def tokens(data):
    if not isinstance(data, list):
        data = [data]
    for item in data:
        text, literal = (item if isinstance(item, tuple) else (item, None))
        pos = 0
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip() == b"":
                    break
                fail(f"cannot read IMAP data at {text[pos:]!r}")
            pos = m.end()
            if m.group(1):
                yield "("
            elif m.group(2):
                yield ")"
            elif m.group(3) is not None:
                yield re.sub(rb"\\(.)", rb"\1", m.group(3))
            elif m.group(4):
                yield literal
            elif m.group(5):
                atom = m.group(5).decode()
                yield None if atom.upper() == "NIL" else atom


def parse(data):
    """All the values in data, top-level ones in order."""
    stack = [[]]
    for tok in tokens(data):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    check(len(stack) == 1, f"unbalanced parentheses in {data!r}")
    return stack[0]


def fetch(imap, uids, items):
    """UID FETCH, returning {uid: {ITEM: value}}."""
    typ, data = imap.uid("FETCH", uids, items)
    check(typ == "OK", f"UID FETCH {uids} {items}: {typ} {data}")
    values = parse([d for d in data if d is not None])
    result = {}
    for seq, attrs in zip(values[0::2], values[1::2]):
        pairs = dict(zip((k.upper() for k in attrs[0::2]), attrs[1::2]))
        if "UID" in pairs:  # not an unsolicited flag update without one
            result.setdefault(int(pairs["UID"]), {}).update(pairs)
    return result


def ok(what, typ_data):
    typ, data = typ_data
    check(typ == "OK", f"{what}: {typ} {data}")
    return data


def uid_search(imap, *criteria):
    data = ok(f"UID SEARCH {criteria}", imap.uid("SEARCH", *criteria))
    return sorted(int(u) for u in data[0].split())


def response_code(imap, code):
    """The last [CODE ...] the server sent, e.g. COPYUID, as a list of words."""
    _, data = imap.response(code)
    check(data and data[-1] is not None, f"the server sent no [{code}] response code")
    return data[-1].decode().split()


# ---------------------------------------------------------------------------------------------
# The tour

def main():
    lmtp_port, imap_port, pop3_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    user, password = sys.argv[4], sys.argv[5]
    sent = messages()
    for raw in sent:
        deliver(lmtp_port, user, raw)

    imap = imaplib.IMAP4(HOST, imap_port, timeout=10)
    ok("LOGIN", imap.login(user, password))
    caps = ok("CAPABILITY", imap.capability())[-1].decode().upper().split()
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+"):
        check(cap in caps, f"CAPABILITY after login lacks {cap}: {caps}")

    # Every account starts with the special-use folders (RFC 6154).
    folders = {}
    for line in ok("LIST", imap.list()):
        attrs, delim, name = parse(line)
        folders[name.decode() if isinstance(name, bytes) else name] = set(attrs)
    for name, use in (("INBOX", None), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                      ("Trash", "\\Trash"), ("Junk", "\\Junk"), ("Archives", "\\Archive")):
        check(name in folders, f"LIST lacks {name}: {folders}")
        if use:
            check(use in folders[name], f"LIST {name} has {folders[name]}, want {use}")

    # SELECT: what arrived by LMTP is there, unseen.
    typ, data = imap.select("INBOX")
    check(typ == "OK" and int(data[0]) == len(sent), f"SELECT INBOX: {typ} {data}, want {len(sent)} messages")
    uidvalidity = int(imap.response("UIDVALIDITY")[1][-1])
    uids = uid_search(imap, "ALL")
    check(len(uids) == len(sent), f"UID SEARCH ALL = {uids}")
    plain_uid, report_uid, greeting_uid = uids

    # FETCH: the message is exactly what was sent, after the trace fields LMTP added; the
    # envelope and MIME structure are those of the message.
    got = fetch(imap, "1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])")
    for uid, raw in zip(uids, sent):
        body = got[uid]["BODY[]"]
        check(body.endswith(raw), f"UID {uid}: BODY[] is not the message that was sent")
        trace = body[:len(body) - len(raw)].decode()
        for line in trace.splitlines():
            check(re.match(r"(Return-Path|Delivered-To|Received): ", line), f"UID {uid}: unexpected line before the message: {line!r}")
        check(int(got[uid]["RFC822.SIZE"]) == len(body), f"UID {uid}: RFC822.SIZE {got[uid]['RFC822.SIZE']}, BODY[] has {len(body)} octets")
        check("\\Seen" not in got[uid]["FLAGS"], f"UID {uid}: BODY.PEEK[] set \\Seen")

    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = got[greeting_uid]["ENVELOPE"]
    decoded = str(email.header.make_header(email.header.decode_header(subject.decode())))
    check(decoded == "Grüße aus Köln", f"ENVELOPE subject decodes to {decoded!r}")
    check(from_ == [[b"Alice Example", None, b"alice", b"example.org"]], f"ENVELOPE from = {from_}")
    check(message_id == b"<3.imap-e2e@letterbox.test>", f"ENVELOPE message-id = {message_id}")

    structure = got[report_uid]["BODYSTRUCTURE"]
    # A multipart is (part part ... "MIXED" ...): the parts come first, then the subtype.
    n_parts = next(i for i, p in enumerate(structure) if not isinstance(p, list))
    parts, subtype = structure[:n_parts], structure[n_parts]
    check(subtype.upper() == b"MIXED" and len(parts) == 2, f"BODYSTRUCTURE of the report: {structure}")
    check([p[0].upper() for p in parts] == [b"TEXT", b"APPLICATION"], f"report parts: {parts}")
    attachment = parts[1]
    check(attachment[1].upper() == b"PDF" and attachment[5].upper() == b"BASE64", f"attachment part: {attachment}")
    disposition = attachment[8]
    check(disposition[0].upper() == b"ATTACHMENT" and disposition[1][1] == b"report.pdf", f"attachment disposition: {disposition}")
    check(fetch(imap, str(plain_uid), "(BODYSTRUCTURE)")[plain_uid]["BODYSTRUCTURE"][:2] == [b"text", b"plain"],
          "BODYSTRUCTURE of the plain message is not text/plain")

    # A non-PEEK body fetch sets \Seen (RFC 3501 §6.4.5).
    fetch(imap, str(plain_uid), "(BODY[TEXT])")
    check("\\Seen" in fetch(imap, str(plain_uid), "(FLAGS)")[plain_uid]["FLAGS"], "BODY[TEXT] did not set \\Seen")

    # STORE: system flags and keywords, added and removed.
    ok("STORE", imap.uid("STORE", str(report_uid), "+FLAGS", "(\\Flagged $Important project-x)"))
    ok("STORE", imap.uid("STORE", str(greeting_uid), "+FLAGS.SILENT", "(\\Answered)"))
    ok("STORE", imap.uid("STORE", str(greeting_uid), "-FLAGS", "(\\Answered)"))
    # \Recent is this session's (it selected first, RFC 3501 §2.3.2), not the messages'.
    flags = {u: set(v["FLAGS"]) - {"\\Recent"} for u, v in fetch(imap, "1:*", "(FLAGS)").items()}
    check(flags == {plain_uid: {"\\Seen"}, report_uid: {"\\Flagged", "$Important", "project-x"}, greeting_uid: set()},
          f"flags after STORE: {flags}")

    # SEARCH: address, subject, text and flag keys, and a UTF-8 subject in a literal.
    check(uid_search(imap, "FROM", "alice@example.org") == uids, "SEARCH FROM alice")
    check(uid_search(imap, "SUBJECT", '"plain hello"') == [plain_uid], "SEARCH SUBJECT is not case-insensitive")
    check(uid_search(imap, "TEXT", "quarterly") == [plain_uid], "SEARCH TEXT quarterly")
    check(uid_search(imap, "UNSEEN") == [report_uid, greeting_uid], "SEARCH UNSEEN")
    check(uid_search(imap, "KEYWORD", "project-x") == [report_uid], "SEARCH KEYWORD")
    check(uid_search(imap, "FLAGGED", "NOT", "SEEN") == [report_uid], "SEARCH FLAGGED NOT SEEN")
    imap.literal = "Grüße".encode()
    check(uid_search(imap, "CHARSET", "UTF-8", "SUBJECT") == [greeting_uid], "SEARCH CHARSET UTF-8 SUBJECT Grüße (an encoded word)")
    imap.literal = "grüße vom rhein".encode()
    check(uid_search(imap, "CHARSET", "UTF-8", "BODY") == [greeting_uid], "SEARCH BODY grüße vom rhein (Latin-1, quoted-printable)")

    # Folders: CREATE, then UID COPY and UID MOVE answer COPYUID (RFC 4315, RFC 6851).
    ok("CREATE", imap.create("Projects"))
    ok("CREATE", imap.create("Projects/2024"))
    ok("UID COPY", imap.uid("COPY", str(plain_uid), "Projects"))
    validity, src, dst = response_code(imap, "COPYUID")
    check(src == str(plain_uid), f"COPYUID source {src}, want {plain_uid}")
    ok("UID MOVE", imap.uid("MOVE", str(report_uid), "Projects/2024"))
    _, moved_src, moved_dst = response_code(imap, "COPYUID")
    check(moved_src == str(report_uid), f"MOVE COPYUID source {moved_src}, want {report_uid}")
    check(uid_search(imap, "ALL") == [plain_uid, greeting_uid], "UID MOVE left the message in INBOX")
    typ, data = imap.status("Projects/2024", "(MESSAGES UIDNEXT)")
    check(typ == "OK" and b"MESSAGES 1" in data[0], f"STATUS Projects/2024: {data}")

    # The moved message keeps its flags and bytes.
    ok("SELECT", imap.select("Projects/2024"))
    moved = fetch(imap, moved_dst, "(FLAGS BODY.PEEK[])")[int(moved_dst)]
    check(set(moved["FLAGS"]) - {"\\Recent"} == {"\\Flagged", "$Important", "project-x"}, f"moved flags: {moved['FLAGS']}")
    check(moved["BODY[]"].endswith(sent[1]), "moved message differs")

    # APPEND with flags and an internal date (as a mail program saves a draft) answers APPENDUID.
    draft = new_message(4, "Draft reply", "Dear Alice,\n").as_bytes()
    internal = time.mktime((2024, 2, 29, 12, 0, 0, 0, 0, -1))
    ok("APPEND", imap.append("Drafts", "(\\Draft $Todo)", imaplib.Time2Internaldate(internal), draft))
    drafts_validity, draft_uid = response_code(imap, "APPENDUID")
    ok("SELECT Drafts", imap.select("Drafts"))
    saved = fetch(imap, draft_uid, "(FLAGS INTERNALDATE BODY.PEEK[])")[int(draft_uid)]
    check(set(saved["FLAGS"]) - {"\\Recent"} == {"\\Draft", "$Todo"}, f"appended flags {saved['FLAGS']}")
    check(imaplib.Internaldate2tuple(b'INTERNALDATE "' + saved["INTERNALDATE"] + b'"') == time.localtime(internal),
          f"INTERNALDATE {saved['INTERNALDATE']}")
    check(saved["BODY[]"] == draft, "APPEND did not store the message byte for byte")

    # EXPUNGE: \Deleted, then EXPUNGE says which sequence number went.
    ok("STORE", imap.uid("STORE", draft_uid, "+FLAGS", "(\\Deleted)"))
    ok("EXPUNGE", imap.expunge())
    check(uid_search(imap, "ALL") == [], "Drafts is not empty after EXPUNGE")

    # Live updates: a second connection IDLEs on INBOX and hears LMTP delivery and POP3 deletion.
    ok("SELECT", imap.select("INBOX"))
    check(int(imap.response("UIDVALIDITY")[1][-1]) == uidvalidity, "INBOX UIDVALIDITY changed")
    imap.response("EXISTS")  # forget what SELECT said
    idle_watch(lmtp_port, imap_port, pop3_port, user, password)
    # The first connection was not idling: it hears about both at its next command.
    ok("NOOP", imap.noop())
    check(imap.response("EXPUNGE")[1] == [b"1"], "NOOP did not report the POP3 deletion as EXPUNGE 1")
    # EXISTS 3 before EXPUNGE 1 or EXISTS 2 after it: either order is right.
    check(imap.response("EXISTS")[1][-1] in (b"2", b"3"), "NOOP did not report the delivery as EXISTS")
    check(uid_search(imap, "ALL") == [greeting_uid, greeting_uid + 1], "INBOX after the POP3 deletion and a delivery")
    typ, data = imap.logout()
    check(typ == "BYE", f"LOGOUT: {typ} {data}")
    print("imaplib: every check passed")


def idle_watch(lmtp_port, imap_port, pop3_port, user, password):
    """IDLE (RFC 2177) in its own connection: imaplib 3.11 has no idle(), so the command is
    written and the untagged responses read on imaplib's own socket."""
    watcher = imaplib.IMAP4(HOST, imap_port, timeout=10)
    ok("LOGIN", watcher.login(user, password))
    typ, data = watcher.select("INBOX")
    count = int(data[0])
    watcher.send(b"W1 IDLE\r\n")
    check(watcher.readline().startswith(b"+"), "IDLE got no continuation")

    def hear(what, pattern):
        watcher.sock.settimeout(LIVE_UPDATE_DEADLINE)
        deadline = time.monotonic() + LIVE_UPDATE_DEADLINE
        heard = []
        while time.monotonic() < deadline:
            try:
                line = watcher.readline()
            except socket.timeout:
                break
            heard.append(line)
            if re.fullmatch(pattern, line.strip()):
                return
        fail(f"IDLE did not hear {what} within {LIVE_UPDATE_DEADLINE} s; heard {heard}")

    deliver(lmtp_port, user, new_message(5, "While you were idle", "News.\n").as_bytes())
    hear("the LMTP delivery", rb"\* %d EXISTS" % (count + 1))

    pop = poplib.POP3(HOST, pop3_port, timeout=10)
    pop.user(user)
    pop.pass_(password)
    pop.dele(1)
    pop.quit()
    hear("the POP3 DELE 1 + QUIT", rb"\* 1 EXPUNGE")

    watcher.send(b"DONE\r\n")
    watcher.sock.settimeout(10)
    while True:
        line = watcher.readline()
        check(line != b"", "connection closed during IDLE")
        if line.startswith(b"W1 "):
            check(line.startswith(b"W1 OK"), f"IDLE ended with {line!r}")
            break
    watcher.logout()


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    try:
        main()
    except (imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException, OSError) as e:
        fail(f"{type(e).__name__}: {e}")
