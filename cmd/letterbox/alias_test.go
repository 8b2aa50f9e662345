package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/pkg/letterboxtest"
)

func TestAliasCommands(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "", "user", "add", "bob@example.com", "--password", "pw", d), 0, "user add bob")
	expectCode(t, lb(t, nil, "", "user", "add", "carol@example.com", "--password", "pw", d), 0, "user add carol")

	r := lb(t, nil, "", "alias", "add", "Info@example.com", "bob@example.com", d)
	expectCode(t, r, 0, "alias add")
	if r.stdout != "alias info@example.com added for bob@example.com\n" && r.stdout != "alias Info@example.com added for bob@example.com\n" {
		t.Errorf("alias add said %q", r.stdout)
	}
	expectCode(t, lb(t, nil, "", "alias", "add", "sales@example.com", "bob@example.com", d), 0, "alias add sales")
	expectCode(t, lb(t, nil, "", "alias", "add", "info@example.com", "carol@example.com", d), exitCantCrt, "alias add of an existing alias")
	expectCode(t, lb(t, nil, "", "alias", "add", "carol@example.com", "bob@example.com", d), exitCantCrt, "alias add of a user's address")
	expectCode(t, lb(t, nil, "", "alias", "add", "x@example.com", "nobody@example.com", d), exitNoUser, "alias add for an unknown user")
	expectCode(t, lb(t, nil, "", "alias", "add", "x@example.com", d), exitUsage, "alias add with one argument")
	expectCode(t, lb(t, nil, "", "user", "add", "info@example.com", "--password", "pw", d), exitCantCrt, "user add of an alias's address")

	r = lb(t, nil, "", "alias", "list", d)
	expectCode(t, r, 0, "alias list")
	if !regexp.MustCompile(`^info@example\.com +bob@example\.com\nsales@example\.com +bob@example\.com\n$`).MatchString(r.stdout) {
		t.Errorf("alias list:\n%s", r.stdout)
	}
	r = lb(t, nil, "", "user", "show", "bob@example.com", d)
	if !regexp.MustCompile(`(?m)^aliases: +info@example\.com, sales@example\.com$`).MatchString(r.stdout) {
		t.Errorf("user show lacks the aliases:\n%s", r.stdout)
	}
	r = lb(t, nil, "", "user", "show", "carol@example.com", d)
	if !regexp.MustCompile(`(?m)^aliases: +none$`).MatchString(r.stdout) {
		t.Errorf("user show of a user without aliases:\n%s", r.stdout)
	}

	// deliver resolves aliases, with a detail too.
	addFolder(t, data, "bob@example.com", "Lists")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "info@example.com", d), 0, "deliver to an alias")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "info+lists@example.com", d), 0, "deliver to alias+detail")
	if n := count(t, data, "bob@example.com", "INBOX"); n != 1 {
		t.Errorf("bob's INBOX: %d messages, want 1", n)
	}
	if n := count(t, data, "bob@example.com", "Lists"); n != 1 {
		t.Errorf("bob's Lists: %d messages, want 1", n)
	}

	expectCode(t, lb(t, nil, "", "alias", "del", "info@example.com", d), 0, "alias del")
	expectCode(t, lb(t, nil, "", "alias", "del", "info@example.com", d), exitNoUser, "alias del again")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "info@example.com", d), exitNoUser, "deliver to a deleted alias")
	expectCode(t, lb(t, nil, "", "user", "del", "bob@example.com", d), 0, "user del")
	if r := lb(t, nil, "", "alias", "list", d); r.code != 0 || r.stdout != "" {
		t.Errorf("aliases left after their user went: %q (exit %d)", r.stdout, r.code)
	}
}

func TestDeliverDetail(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "", "user", "add", "bob@example.com", "--password", "pw", d), 0, "user add")
	addFolder(t, data, "bob@example.com", "Lists")

	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "bob+LISTS@example.com", d), 0, "deliver +detail")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "bob+nosuch@example.com", d), 0, "deliver +missing folder")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "bob+lists@example.com", "--mailbox", "Archives", d), 0, "deliver +detail --mailbox")
	expectCode(t, lb(t, []string{"LETTERBOX_LMTP_DETAIL_TO_FOLDER=false"}, testMessage, "deliver", "--to", "bob+lists@example.com", d), 0, "deliver with detail_to_folder off")
	expectCode(t, lb(t, []string{"LETTERBOX_LMTP_DETAIL_DELIMITER="}, testMessage, "deliver", "--to", "bob+lists@example.com", d), exitNoUser, "deliver without a delimiter")
	expectCode(t, lb(t, []string{"LETTERBOX_LMTP_DETAIL_DELIMITER=-"}, testMessage, "deliver", "--to", "bob-lists@example.com", d), 0, "deliver with delimiter -")

	for _, c := range []struct {
		name string
		want int
	}{{"Lists", 2}, {"INBOX", 2}, {"Archives", 1}} {
		if n := count(t, data, "bob@example.com", c.name); n != c.want {
			t.Errorf("%s: %d messages, want %d", c.name, n, c.want)
		}
	}
	st := openTestStore(t, data)
	bob, err := st.LookupAccount(context.Background(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MailboxByName(context.Background(), bob.ID, "nosuch"); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Errorf("a folder was created for a detail: %v", err)
	}
}

// TestAliasIsNoLogin: logging in with an alias's address fails exactly as with an unknown
// user, over POP3 and IMAP.
func TestAliasIsNoLogin(t *testing.T) {
	srv := letterboxtest.Start(t)
	srv.AddUser("bob@example.com", "pw")
	if err := srv.Store().AddAlias(context.Background(), "info@example.com", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	pop3Login := func(user string) string {
		c := dialLine(t, srv.POP3Addr())
		c.read() // greeting
		c.write("USER " + user)
		if l := c.read(); !strings.HasPrefix(l, "+OK") {
			return "USER: " + l
		}
		c.write("PASS pw")
		return c.read()
	}
	imapLogin := func(user string) string {
		c := dialLine(t, srv.IMAPAddr())
		c.read() // greeting
		c.write("a LOGIN " + user + " pw")
		return c.tagged("a")
	}
	if got := pop3Login("bob@example.com"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 login of the account: %q", got)
	}
	if got := imapLogin("bob@example.com"); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("IMAP login of the account: %q", got)
	}
	alias, unknown := pop3Login("info@example.com"), pop3Login("nobody@example.com")
	if !strings.HasPrefix(alias, "-ERR") || alias != unknown {
		t.Errorf("POP3 login with an alias: %q; with an unknown user: %q", alias, unknown)
	}
	alias, unknown = imapLogin("info@example.com"), imapLogin("nobody@example.com")
	if !strings.HasPrefix(alias, "a NO") || alias != unknown {
		t.Errorf("IMAP login with an alias: %q; with an unknown user: %q", alias, unknown)
	}
}

type lineConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &lineConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (l *lineConn) write(line string) {
	l.t.Helper()
	if _, err := l.c.Write([]byte(line + "\r\n")); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lineConn) read() string {
	l.t.Helper()
	line, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(line, "\r\n")
}

// tagged returns the IMAP response tagged tag, skipping untagged ones.
func (l *lineConn) tagged(tag string) string {
	l.t.Helper()
	for {
		if line := l.read(); strings.HasPrefix(line, tag+" ") {
			return line
		}
	}
}

func openTestStore(t *testing.T, data string) *store.Store {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func addFolder(t *testing.T, data, address, name string) {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.LookupAccount(context.Background(), address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateMailbox(context.Background(), a.ID, name, ""); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, data, address, name string) int {
	t.Helper()
	msgs, _ := mailbox(t, data, address, name)
	return len(msgs)
}

// TestDeliverQuotaGrace: deliver applies quota.grace (default 10% of the quota): the
// delivery that crosses the quota is accepted if it stays within the grace, the next is not.
func TestDeliverQuotaGrace(t *testing.T) {
	size := int64(len(strings.ReplaceAll(testMessage, "\n", "\r\n")))
	quota := 4*size + size*3/4 // the fifth message crosses it by size/4, within 10% of it
	for _, c := range []struct {
		env      []string
		accepted int
	}{{nil, 5}, {[]string{"LETTERBOX_QUOTA_GRACE=0"}, 4}} {
		data := t.TempDir()
		d := "--data=" + data
		expectCode(t, lb(t, nil, "", "user", "add", "q@example.com", "--password", "pw", "--quota", strconv.FormatInt(quota, 10), d), 0, "user add")
		for i := 1; i <= c.accepted; i++ {
			expectCode(t, lb(t, c.env, testMessage, "deliver", "--to", "q@example.com", d), 0, fmt.Sprintf("delivery %d (%v)", i, c.env))
		}
		r := lb(t, c.env, testMessage, "deliver", "--to", "q@example.com", d)
		expectCode(t, r, exitTempFail, fmt.Sprintf("delivery %d (%v)", c.accepted+1, c.env))
		if !strings.Contains(r.stderr, "over quota") {
			t.Errorf("refusal says %q", r.stderr)
		}
	}
}
