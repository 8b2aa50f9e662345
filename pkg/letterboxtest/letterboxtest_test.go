package letterboxtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

const hello = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello\r\n" +
	"Message-ID: <hello@example.org>\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n\r\nHi Bob!\r\n"

// pop3Conn is a minimal POP3 client for the tests: it sends a command and returns the
// status line, or the lines of a multi-line answer (RFC 1939 §3).
type pop3Conn struct {
	t  *testing.T
	tp *textproto.Conn
}

func dialPOP3(t *testing.T, addr string) *pop3Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &pop3Conn{t: t, tp: textproto.NewConn(c)}
	if l := p.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 greeting %q", l)
	}
	return p
}

func (p *pop3Conn) line() string {
	p.t.Helper()
	l, err := p.tp.ReadLine()
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

func (p *pop3Conn) cmd(format string, args ...any) string {
	p.t.Helper()
	if err := p.tp.PrintfLine(format, args...); err != nil {
		p.t.Fatal(err)
	}
	l := p.line()
	if !strings.HasPrefix(l, "+OK") {
		p.t.Fatalf("POP3 %s: %s", fmt.Sprintf(format, args...), l)
	}
	return l
}

func (p *pop3Conn) multi(format string, args ...any) []string {
	p.t.Helper()
	p.cmd(format, args...)
	lines, err := p.tp.ReadDotLines()
	if err != nil {
		p.t.Fatal(err)
	}
	return lines
}

func TestStartServesEveryListener(t *testing.T) {
	srv := Start(t)
	for name, addr := range map[string]string{"IMAP": srv.IMAPAddr(), "POP3": srv.POP3Addr(), "LMTP": srv.LMTPAddr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s at %q: %v", name, addr, err)
		}
		greeting, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.Contains(greeting, Hostname) && name != "IMAP" {
			t.Errorf("%s greeting %q, %v", name, greeting, err)
		}
	}
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// The JSON API is open to loopback clients.
	srv.AddUser("bob@example.net", "secret")
	resp, err = http.Get(srv.APIURL() + "/users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var users struct{ Users []struct{ Address string } }
	if err := json.NewDecoder(resp.Body).Decode(&users); err != nil || resp.StatusCode != http.StatusOK ||
		len(users.Users) != 1 || users.Users[0].Address != "bob@example.net" {
		t.Errorf("API users: %d %+v %v", resp.StatusCode, users, err)
	}
	if srv.Store() == nil || srv.Config().Hostname != Hostname || srv.Store().Dir() != srv.Config().Data {
		t.Error("Store and Config do not describe the running server")
	}
}

func TestDeliverAndMailbox(t *testing.T) {
	srv := Start(t)
	srv.AddUser("bob@example.net", "secret")
	d := srv.Deliver("bob@example.net", strings.ReplaceAll(hello, "\r\n", "\n"))
	mb := srv.Mailbox("bob@example.net", "INBOX")
	wantUIDL, _ := maildrop.FormatUIDL("", 1, mb.UIDValidity)
	if d != (Delivered{Mailbox: "INBOX", UID: 1, UIDValidity: mb.UIDValidity, UIDL: wantUIDL, Size: int64(len(hello))}) {
		t.Errorf("Deliver = %+v", d)
	}
	if mb.Name != "INBOX" || mb.UIDNext != 2 || len(mb.Messages) != 1 {
		t.Fatalf("INBOX %+v", mb)
	}
	m := mb.Messages[0]
	if m.UID != 1 || m.UIDL != wantUIDL || len(m.Flags) != 0 || m.Size != int64(len(hello)) ||
		m.Subject != "Hello" || m.From != "Alice <alice@example.org>" || m.MessageID != "<hello@example.org>" ||
		m.InternalDate.IsZero() {
		t.Errorf("message %+v", m)
	}

	sent := srv.DeliverTo("bob@example.net", "Sent", hello)
	if sent.Mailbox != "Sent" || sent.UID != 1 || sent.UIDL != "" {
		t.Errorf("DeliverTo Sent = %+v", sent)
	}
	if s := srv.Mailbox("bob@example.net", "Sent"); s.SpecialUse != store.SpecialSent || !slices.Equal(s.UIDs(), []uint32{1}) || s.Messages[0].UIDL != "" {
		t.Errorf("Sent %+v", s)
	}
}

// TestPOP3AndSnapshotAgree reads the delivered mail over POP3 and checks that the snapshot
// shows what POP3 did: the same UIDL, \Seen after RETR, and the message gone after DELE.
func TestPOP3AndSnapshotAgree(t *testing.T) {
	srv := Start(t)
	srv.AddUser("bob", "secret")
	d := srv.Deliver("bob", hello)
	srv.Deliver("bob", hello)

	p := dialPOP3(t, srv.POP3Addr())
	p.cmd("USER bob")
	p.cmd("PASS secret")
	if got := p.multi("UIDL"); !slices.Equal(got, []string{"1 " + d.UIDL, "2 " + srv.Mailbox("bob", "INBOX").Messages[1].UIDL}) {
		t.Errorf("UIDL %q", got)
	}
	if got := strings.Join(p.multi("RETR 1"), "\r\n") + "\r\n"; got != hello {
		t.Errorf("RETR 1 = %q, want the delivered message", got)
	}
	p.cmd("DELE 2")
	p.cmd("QUIT")

	// QUIT's +OK comes after the commit, so the snapshot must already show it.
	mb := srv.Mailbox("bob", "INBOX")
	if len(mb.Messages) != 1 || mb.Messages[0].UID != 1 || !mb.Messages[0].HasFlag(store.FlagSeen) {
		t.Fatalf("after RETR 1, DELE 2, QUIT: %+v", mb)
	}
}

func TestWithConfigHideMode(t *testing.T) {
	srv := Start(t, WithConfig(func(c *config.Config) {
		c.POP3.Delete = config.DeleteHide
		c.POP3.UIDLFormat = "%v-%u"
		c.LMTP.Addr = "" // disabled
	}))
	if srv.LMTPAddr() != "" {
		t.Errorf("LMTP disabled but at %q", srv.LMTPAddr())
	}
	srv.AddUser("bob", "secret")
	d := srv.Deliver("bob", hello)
	if want := fmt.Sprintf("%d-1", d.UIDValidity); d.UIDL != want {
		t.Errorf("UIDL %q, want %q", d.UIDL, want)
	}
	p := dialPOP3(t, srv.POP3Addr())
	p.cmd("USER bob")
	p.cmd("PASS secret")
	p.cmd("DELE 1")
	p.cmd("QUIT")
	// hide: IMAP still has the message, POP3 no longer lists it, so it has no UIDL.
	mb := srv.Mailbox("bob", "INBOX")
	if len(mb.Messages) != 1 || mb.Messages[0].UIDL != "" || !mb.Messages[0].HasFlag(maildrop.HiddenKeyword) {
		t.Errorf("after a hidden DELE: %+v", mb.Messages)
	}
}

// TestWaitForMessagesOverLMTP waits for a message that an LMTP client delivers from
// another goroutine.
func TestWaitForMessagesOverLMTP(t *testing.T) {
	srv := Start(t)
	srv.AddUser("bob@example.net", "secret")
	errc := make(chan error, 1)
	go func() {
		conn, err := net.Dial("tcp", srv.LMTPAddr())
		if err != nil {
			errc <- err
			return
		}
		c := smtp.NewClientLMTP(conn)
		defer c.Close()
		errc <- c.SendMail("alice@example.org", []string{"bob@example.net"}, strings.NewReader(hello))
	}()
	mb := srv.WaitForMessages("bob@example.net", "INBOX", 1, 30*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(mb.Messages) != 1 || mb.Messages[0].Subject != "Hello" {
		t.Errorf("got %+v", mb)
	}
	// Already there: returns at once.
	if mb := srv.WaitForMessages("bob@example.net", "INBOX", 0, time.Nanosecond); len(mb.Messages) != 1 {
		t.Errorf("second wait: %+v", mb)
	}
}

func TestWaitForMessagesTimesOut(t *testing.T) {
	srv := Start(t)
	srv.AddUser("bob", "secret")
	srv.Deliver("bob", hello)
	mb, err := srv.waitFor("bob", "INBOX", 10*time.Millisecond, func(mb Mailbox) bool { return len(mb.Messages) >= 2 })
	if !errors.Is(err, errTimeout) || len(mb.Messages) != 1 {
		t.Errorf("waitFor 2 of 1: %v, %d messages", err, len(mb.Messages))
	}
	if _, err := srv.waitFor("nobody", "INBOX", time.Second, func(Mailbox) bool { return true }); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("waitFor nobody: %v", err)
	}
}

// TestWaitForMessagesSeesAMailboxCreatedLater waits on a mailbox that does not exist yet.
func TestWaitForMessagesSeesAMailboxCreatedLater(t *testing.T) {
	srv := Start(t)
	srv.AddUser("bob", "secret")
	a, _ := srv.Store().LookupAccount(t.Context(), "bob")
	done := make(chan Mailbox)
	go func() {
		mb, _ := srv.waitFor("bob", "Later", 30*time.Second, func(mb Mailbox) bool { return len(mb.Messages) >= 1 })
		done <- mb
	}()
	if _, err := srv.Store().CreateMailbox(t.Context(), a.ID, "Later", ""); err != nil {
		t.Fatal(err)
	}
	srv.DeliverTo("bob", "Later", hello)
	if mb := <-done; mb.Name != "Later" || len(mb.Messages) != 1 {
		t.Errorf("got %+v", mb)
	}
}

func TestWithClock(t *testing.T) {
	at := time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC)
	srv := Start(t, WithDeterministic(7), WithClock(func() time.Time { return at }))
	srv.AddUser("bob", "secret")
	srv.Deliver("bob", hello)
	srv.Deliver("bob", hello)
	for _, m := range srv.Mailbox("bob", "INBOX").Messages {
		if !m.InternalDate.Equal(at) {
			t.Errorf("INTERNALDATE %v, want the injected %v", m.InternalDate, at)
		}
	}
	if uv := srv.Mailbox("bob", "INBOX").UIDValidity; uv != 7 {
		t.Errorf("UIDVALIDITY %d, want the seed 7", uv)
	}
}

// run does the same things on a fresh deterministic server and returns what a test would
// compare: UIDVALIDITYs, INTERNALDATEs, UIDLs, and an IMAP and a POP3 transcript.
func run(t *testing.T, seed uint32) string {
	srv := Start(t, WithDeterministic(seed))
	srv.AddUser("bob", "secret")
	srv.Deliver("bob", hello)
	srv.Deliver("bob", hello)
	srv.DeliverTo("bob", "Sent", hello)
	var b strings.Builder
	for _, name := range []string{"INBOX", "Sent", "Trash"} {
		mb := srv.Mailbox("bob", name)
		fmt.Fprintf(&b, "%s %d %d\n", mb.Name, mb.UIDValidity, mb.UIDNext)
		for _, m := range mb.Messages {
			fmt.Fprintf(&b, "  %d %s %s %v\n", m.UID, m.UIDL, m.InternalDate.Format(time.RFC3339), m.Flags)
		}
	}
	b.WriteString(imapTranscript(t, srv.IMAPAddr(),
		"a LOGIN bob secret", "b SELECT INBOX", "c UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", "d LOGOUT"))
	p := dialPOP3(t, srv.POP3Addr())
	p.cmd("USER bob")
	p.cmd("PASS secret")
	b.WriteString(strings.Join(p.multi("UIDL"), "\n"))
	p.cmd("QUIT")
	return b.String()
}

// imapTranscript sends tagged commands one by one and returns everything the server said.
func imapTranscript(t *testing.T, addr string, cmds ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	var b strings.Builder
	read := func(tag string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("IMAP: %v after %q", err, b.String())
			}
			b.WriteString(l)
			if tag == "" || strings.HasPrefix(l, tag+" ") {
				return
			}
		}
	}
	read("")
	for _, cmd := range cmds {
		fmt.Fprintf(c, "%s\r\n", cmd)
		read(strings.Fields(cmd)[0])
	}
	return b.String()
}

func TestDeterministicRunsAreIdentical(t *testing.T) {
	first, second := run(t, 1000), run(t, 1000)
	if first != second {
		t.Errorf("two runs differ:\n%s\n---\n%s", first, second)
	}
	for _, want := range []string{
		"INBOX 1000 3\n", "Sent 1004 2\n", "Trash 1005 1\n",
		"1 00000001000003e8 2026-01-01T00:00:01Z",     // the clock read once for the account
		"INTERNALDATE \"01-Jan-2026 00:00:02 +0000\"", // RFC 3501 date-day-fixed, two digits as Dovecot
	} {
		if !strings.Contains(first, want) {
			t.Errorf("run lacks %q:\n%s", want, first)
		}
	}
	if other := run(t, 2000); !strings.Contains(other, "INBOX 2000 3\n") {
		t.Errorf("seed 2000:\n%s", other)
	}
}
