package lmtp

import (
	"context"
	"strings"
	"testing"
)

// folderCounts returns how many messages each of an account's folders holds.
func (e *testEnv) folderCounts(t *testing.T, address string) map[string]int {
	t.Helper()
	ctx := context.Background()
	acct, err := e.st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := e.st.Mailboxes(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range boxes {
		s, err := e.st.Status(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Messages > 0 {
			out[m.Name] = int(s.Messages)
		}
	}
	return out
}

// send delivers testMessage in one transaction and returns each recipient's RCPT code
// and, for those accepted, its DATA code.
func send(t *testing.T, addr string, rcpts ...string) (rcptCodes, dataCodes []int) {
	t.Helper()
	c := dialRaw(t, addr)
	c.expect("LHLO mta.example", 250)
	c.expect("MAIL FROM:<alice@example.org>", 250)
	accepted := 0
	for _, r := range rcpts {
		code, _ := c.cmd("RCPT TO:<" + r + ">")
		rcptCodes = append(rcptCodes, code)
		if code == 250 {
			accepted++
		}
	}
	if accepted == 0 {
		return rcptCodes, nil
	}
	c.expect("DATA", 354)
	c.send(dotStuff(testMessage))
	for range accepted {
		code, _ := c.reply()
		dataCodes = append(dataCodes, code)
	}
	return rcptCodes, dataCodes
}

func TestDetailAndAliasDelivery(t *testing.T) {
	env := newEnv(t, Options{DetailDelimiter: "+", DetailToFolder: true},
		map[string]int64{"bob@example.com": 0, "carol@example.com": 0})
	ctx := context.Background()
	bob, err := env.st.LookupAccount(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.st.CreateMailbox(ctx, bob.ID, "Lists", ""); err != nil {
		t.Fatal(err)
	}
	if err := env.st.AddAlias(ctx, "info@example.com", "bob@example.com"); err != nil {
		t.Fatal(err)
	}

	rcpt, data := send(t, env.addr,
		"bob+lists@example.com",  // -> Lists (matched case-insensitively)
		"BOB+lists@example.com",  // the same recipient: stored once
		"bob+nosuch@example.com", // no such folder -> INBOX, none created
		"info@example.com",       // alias -> INBOX
		"info+Lists@example.com", // alias with detail -> Lists
		"nobody+lists@example.com",
		"carol@example.com",
	)
	if want := []int{250, 250, 250, 250, 250, 550, 250}; !equalInts(rcpt, want) {
		t.Fatalf("RCPT codes %v, want %v", rcpt, want)
	}
	if want := []int{250, 250, 250, 250, 250, 250}; !equalInts(data, want) {
		t.Fatalf("DATA codes %v, want %v", data, want)
	}
	got := env.folderCounts(t, "bob@example.com")
	if len(got) != 2 || got["Lists"] != 2 || got["INBOX"] != 2 {
		t.Errorf("bob's folders %v, want Lists:2 INBOX:2 (and no folder nosuch)", got)
	}
	if got := env.folderCounts(t, "carol@example.com"); len(got) != 1 || got["INBOX"] != 1 {
		t.Errorf("carol's folders %v, want INBOX:1", got)
	}
	// The copy keeps the address it was sent to.
	for _, m := range env.inbox(t, "bob@example.com") {
		if !strings.Contains(string(m), "Delivered-To: info@example.com\r\n") &&
			!strings.Contains(string(m), "Delivered-To: bob+nosuch@example.com\r\n") {
			t.Errorf("INBOX copy with an unexpected Delivered-To: %q", m[:80])
		}
	}
}

func TestDetailToFolderOff(t *testing.T) {
	env := newEnv(t, Options{DetailDelimiter: "+"}, map[string]int64{"bob@example.com": 0})
	ctx := context.Background()
	bob, _ := env.st.LookupAccount(ctx, "bob@example.com")
	if _, err := env.st.CreateMailbox(ctx, bob.ID, "Lists", ""); err != nil {
		t.Fatal(err)
	}
	if _, data := send(t, env.addr, "bob+lists@example.com"); !equalInts(data, []int{250}) {
		t.Fatalf("DATA codes %v", data)
	}
	if got := env.folderCounts(t, "bob@example.com"); len(got) != 1 || got["INBOX"] != 1 {
		t.Errorf("folders %v, want the message in INBOX", got)
	}
}

func TestNoDetailDelimiter(t *testing.T) {
	env := newEnv(t, Options{DetailToFolder: true}, map[string]int64{"bob@example.com": 0})
	if rcpt, _ := send(t, env.addr, "bob+lists@example.com"); !equalInts(rcpt, []int{550}) {
		t.Errorf("RCPT codes %v, want 550: without a delimiter there is no detail", rcpt)
	}
	// Another delimiter set: "-" delimits, "+" does not.
	env = newEnv(t, Options{DetailDelimiter: "-"}, map[string]int64{"bob@example.com": 0})
	if rcpt, _ := send(t, env.addr, "bob-lists@example.com", "bob+lists@example.com"); !equalInts(rcpt, []int{250, 550}) {
		t.Errorf("RCPT codes %v, want 250 550", rcpt)
	}
}
