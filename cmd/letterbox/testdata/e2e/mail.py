"""Mail steps of the inspector's browser test, with Python's own clients.

    mail.py deliver LMTP_PORT RECIPIENT SUBJECT   deliver one message over LMTP (smtplib.LMTP)
    mail.py dele POP3_PORT USER PASSWORD UIDL     delete the message with that UIDL over POP3
                                                  (poplib: UIDL, DELE, QUIT)
"""
import poplib
import smtplib
import sys


def deliver(port, rcpt, subject):
    msg = ("From: Sender <sender@example.org>\r\n"
           f"To: {rcpt}\r\n"
           f"Subject: {subject}\r\n"
           "Message-ID: <e2e-inspector@example.org>\r\n"
           "\r\n"
           "Watch me arrive.\r\n")
    with smtplib.LMTP("127.0.0.1", int(port)) as lmtp:
        refused = lmtp.sendmail("sender@example.org", [rcpt], msg.encode())
        if refused:
            sys.exit(f"LMTP refused {refused}")


def dele(port, user, password, uidl):
    pop = poplib.POP3("127.0.0.1", int(port), timeout=30)
    pop.user(user)
    pop.pass_(password)
    _, listing, _ = pop.uidl()
    numbers = [line.split()[0] for line in (l.decode() for l in listing) if line.split()[1] == uidl]
    if len(numbers) != 1:
        sys.exit(f"UIDL {uidl} not in the POP3 listing {listing}")
    pop.dele(numbers[0])
    resp = pop.quit()  # the deletion is committed when QUIT answers +OK
    if not resp.startswith(b"+OK"):
        sys.exit(f"QUIT: {resp!r}")


if __name__ == "__main__":
    step, *args = sys.argv[1:]
    {"deliver": deliver, "dele": dele}[step](*args)
