package pop3

// Tenant isolation (docs/security.md, threat model "other tenants"): alice's maildrop holds
// her INBOX only, message numbers beyond it answer as numbers that exist nowhere, and her
// password does not open bob's account, which answers like an unknown one.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

const (
	bobUser  = "bob@example.com"
	bobToken = "bobsecrettoken"
)

func TestTenantIsolationPOP3(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob, err := e.st.CreateAccount(ctx, store.NewAccount{Address: bobUser, Password: "bob's password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateMailbox(ctx, bob.ID, "Secret", ""); err != nil {
		t.Fatal(err)
	}
	for _, mb := range []string{"INBOX", "INBOX", "INBOX", "INBOX", "Secret"} {
		msg := "Subject: " + bobToken + "\r\n\r\nbob's " + bobToken + "\r\n"
		if _, err := e.st.Deliver(ctx, bob.ID, strings.NewReader(msg), store.DeliverOptions{Mailbox: mb}); err != nil {
			t.Fatal(err)
		}
	}
	e.deliver("Subject: one\r\n\r\nalice's first\r\n")
	e.deliver("Subject: two\r\n\r\nalice's second\r\n")
	bobBefore := bobState(t, e.st, bob.ID)

	c := e.login()
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Errorf("alice's STAT = %q, want her 2 messages", got)
	}
	if _, lines := c.multi("LIST"); len(lines) != 2 {
		t.Errorf("alice's LIST = %q", lines)
	}
	if _, lines := c.multi("UIDL"); len(lines) != 2 {
		t.Errorf("alice's UIDL = %q", lines)
	}
	for _, n := range []string{"1", "2"} {
		c.ok("RETR " + n)
		if b := string(c.body()); strings.Contains(b, bobToken) || !strings.Contains(b, "alice's") {
			t.Errorf("RETR %s = %q", n, b)
		}
	}
	c.ok("QUIT")
	// Numbers 3 and 4 exist in bob's maildrop, not in alice's: they answer like 99. One
	// session per command, as errors count towards the bad-command limit.
	for _, verb := range []string{"RETR %s", "TOP %s 0", "LIST %s", "UIDL %s", "DELE %s"} {
		c := e.login()
		for _, n := range []string{"3", "4"} {
			got := c.cmd(fmt.Sprintf(verb, n))
			want := strings.ReplaceAll(c.cmd(fmt.Sprintf(verb, "99")), "99", n)
			if got != want || !strings.HasPrefix(got, "-ERR") {
				t.Errorf("%q = %q; for a number that exists nowhere: %q", fmt.Sprintf(verb, n), got, want)
			}
		}
		c.ok("QUIT")
	}
	c = e.login()
	c.ok("DELE 1") // alice's own, so that QUIT commits a change
	c.ok("QUIT")
	if got := bobState(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("bob's mail changed by alice's session:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}

	// Alice's password for bob answers like an unknown account, by USER/PASS and by SASL
	// PLAIN with bob as the authorization identity.
	login := func(user, pass string) string {
		c := e.dial()
		c.ok("USER " + user)
		return c.cmd("PASS " + pass)
	}
	if b, n := login(bobUser, testPassword), login("nobody@example.com", testPassword); b != n || !strings.HasPrefix(b, "-ERR [AUTH]") {
		t.Errorf("USER bob + alice's password: %q; an unknown user: %q", b, n)
	}
	sasl := func(authz string) string {
		return e.dial().cmd("AUTH PLAIN " + b64(authz+"\x00"+testUser+"\x00"+testPassword))
	}
	if b, n := sasl(bobUser), sasl("nobody@example.com"); b != n || !strings.HasPrefix(b, "-ERR [AUTH]") {
		t.Errorf("AUTH PLAIN as bob with alice's credentials: %q; as an unknown user: %q", b, n)
	}
	if got := bobState(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("bob's mail changed:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}
}

// bobState describes an account's mailboxes and messages, flags included.
func bobState(t *testing.T, st *store.Store, accountID int64) string {
	t.Helper()
	ctx := context.Background()
	mbs, err := st.Mailboxes(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mb := range mbs {
		fmt.Fprintf(&b, "%s next=%d modseq=%d\n", mb.Name, mb.UIDNext, mb.ModSeq)
		msgs, err := st.Messages(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Fprintf(&b, "  uid=%d flags=%v size=%d\n", m.UID, m.Flags, m.Size)
		}
	}
	return b.String()
}
