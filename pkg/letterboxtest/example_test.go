package letterboxtest_test

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/pkg/letterboxtest"
)

// exampleT stands in for the *testing.T of a real test: an Example function has none. In
// a test, write letterboxtest.Start(t) and leave the cleanup to the test.
type exampleT struct{ cleanups []func() }

func (t *exampleT) Helper()                           {}
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Cleanup(fn func())                 { t.cleanups = append(t.cleanups, fn) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "letterboxtest-example")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// Deliver a message, then read it over POP3 with a client of a few lines.
func Example_pop3() {
	t := &exampleT{} // in a test: the test's t
	defer t.done()

	srv := letterboxtest.Start(t, letterboxtest.WithDeterministic(1))
	srv.AddUser("bob@example.net", "secret")
	srv.Deliver("bob@example.net", "From: alice@example.org\r\nSubject: Hello\r\n\r\nHi Bob!\r\n")

	conn, err := net.Dial("tcp", srv.POP3Addr())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	pop := textproto.NewConn(conn)
	greeting, _ := pop.ReadLine()
	fmt.Println(greeting)
	for _, cmd := range []string{"USER bob@example.net", "PASS secret", "UIDL", "RETR 1", "QUIT"} {
		pop.PrintfLine("%s", cmd)
		status, _ := pop.ReadLine()
		fmt.Println(cmd, "->", status)
		if cmd == "UIDL" || cmd == "RETR 1" { // multi-line answers end with "."
			lines, _ := pop.ReadDotLines()
			fmt.Printf("  %q\n", lines)
		}
	}
	// Output:
	// +OK Letterbox POP3 server ready on letterbox.test
	// USER bob@example.net -> +OK send PASS
	// PASS secret -> +OK maildrop has 1 messages (52 octets)
	// UIDL -> +OK unique-id listing follows
	//   ["1 0000000100000001"]
	// RETR 1 -> +OK 52 octets
	//   ["From: alice@example.org" "Subject: Hello" "" "Hi Bob!"]
	// QUIT -> +OK Letterbox POP3 server signing off (1 messages left)
}

// Read the same message over IMAP with go-imap's client, and check what POP3 did to it.
func Example_imap() {
	t := &exampleT{}
	defer t.done()

	srv := letterboxtest.Start(t, letterboxtest.WithDeterministic(1))
	srv.AddUser("bob@example.net", "secret")
	srv.Deliver("bob@example.net", "From: Alice <alice@example.org>\r\nSubject: Hello\r\n\r\nHi Bob!\r\n")

	c, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.net", "secret").Wait(); err != nil {
		panic(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		panic(err)
	}
	fmt.Println("UIDVALIDITY", sel.UIDValidity, "messages", sel.NumMessages)
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, Envelope: true,
		BodySection: []*imap.FetchItemBodySection{{}}, // BODY[]: sets \Seen
	}).Collect()
	if err != nil {
		panic(err)
	}
	m := msgs[0]
	fmt.Println("UID", m.UID, "subject", m.Envelope.Subject, "from", m.Envelope.From[0].Addr())
	fmt.Println("INTERNALDATE", m.InternalDate.UTC().Format(time.RFC3339))
	c.Logout().Wait()

	// The snapshot shows the store as both protocols see it.
	msg := srv.Mailbox("bob@example.net", "INBOX").Messages[0]
	fmt.Println("flags", msg.Flags, "POP3 UIDL", msg.UIDL)
	// Output:
	// UIDVALIDITY 1 messages 1
	// UID 1 subject Hello from alice@example.org
	// INTERNALDATE 2026-01-01T00:00:01Z
	// flags [\Seen] POP3 UIDL 0000000100000001
}

// Wait for the mail that the code under test sends, here an LMTP client on another
// goroutine, without a polling loop.
func ExampleServer_WaitForMessages() {
	t := &exampleT{}
	defer t.done()

	srv := letterboxtest.Start(t)
	srv.AddUser("bob@example.net", "secret")

	go func() { // the code under test
		conn, err := net.Dial("tcp", srv.LMTPAddr())
		if err != nil {
			panic(err)
		}
		c := smtp.NewClientLMTP(conn)
		defer c.Close()
		c.SendMail("alice@example.org", []string{"bob@example.net"},
			strings.NewReader("From: alice@example.org\r\nSubject: Report\r\n\r\nDone.\r\n"))
	}()

	mb := srv.WaitForMessages("bob@example.net", "INBOX", 1, 10*time.Second)
	fmt.Println(len(mb.Messages), mb.Messages[0].Subject, mb.Messages[0].From)
	// Output:
	// 1 Report alice@example.org
}
