package imap

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestListSpecialUseAndChildren(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok(`CREATE "Projects/2024/"`) // trailing delimiter: a name meant to get children
	got := c.ok(`LIST "" "*"`)
	// Every account starts with INBOX and the special-use folders the store creates.
	mboxes, err := e.st.Mailboxes(t.Context(), e.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`* LIST (\HasNoChildren) "/" INBOX`}
	uses := map[string]bool{}
	for _, m := range mboxes {
		switch {
		case m.Name == "INBOX":
		case m.Name == "Projects":
			want = append(want, `* LIST (\HasChildren) "/" "Projects"`)
		case m.SpecialUse != "":
			uses[m.SpecialUse] = true
			want = append(want, `* LIST (\HasNoChildren `+m.SpecialUse+`) "/" "`+m.Name+`"`)
		default:
			want = append(want, `* LIST (\HasNoChildren) "/" "`+m.Name+`"`)
		}
	}
	for _, use := range []string{`\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`} {
		if !uses[use] {
			t.Errorf("no mailbox has special use %s", use)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("LIST \"\" *:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := c.ok(`LIST "" ""`); len(got) != 1 || got[0] != `* LIST (\Noselect) "/" ""` {
		t.Errorf(`LIST "" "": %q`, got)
	}
	if got := c.ok(`LIST "" "%%"`); len(grep(got, `Projects/2024`)) != 0 || len(grep(got, `"Projects"`)) != 1 {
		t.Errorf(`LIST "" %%: %q`, got)
	}
	if got := c.ok(`LIST "Projects/" "%%"`); len(got) != 1 || !strings.HasSuffix(got[0], `"Projects/2024"`) {
		t.Errorf(`LIST "Projects/" %%: %q`, got)
	}
	if got := c.ok(`LIST "" "inbox"`); len(got) != 1 || !strings.HasSuffix(got[0], " INBOX") {
		t.Errorf(`LIST "" inbox: %q`, got)
	}
	if got := c.ok(`LIST (SPECIAL-USE) "" "*"`); len(got) != 5 {
		t.Errorf("LIST (SPECIAL-USE): %q", got)
	}
	// A superior name without a mailbox shows as \Noselect.
	c.ok(`DELETE "Projects"`)
	if got := grep(c.ok(`LIST "" "Projects*"`), `"Projects"$`); len(got) != 1 || !strings.Contains(got[0], `\Noselect`) {
		t.Errorf("implied parent: %q", got)
	}
}

func TestFoldersCreateRenameDelete(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok(`CREATE "Reports"`)
	if _, status := c.cmd(`CREATE "Reports"`); !strings.HasPrefix(status, "NO [ALREADYEXISTS]") {
		t.Errorf("CREATE of an existing mailbox: %s", status)
	}
	if _, status := c.cmd(`CREATE "inbox"`); !strings.HasPrefix(status, "NO") {
		t.Errorf("CREATE INBOX: %s", status)
	}
	if _, status := c.cmd(`CREATE "a*b"`); !strings.HasPrefix(status, "NO") {
		t.Errorf("CREATE with a wildcard: %s", status)
	}
	msg := plainMessage("Filed", "x\r\n")
	c.ok("APPEND Reports {%d+}\r\n%s", len(msg), msg)
	c.ok(`RENAME "Reports" "Archive/Reports 2024"`)
	got := c.ok(`LIST "" "*Reports*"`)
	if len(got) != 1 || !strings.HasSuffix(got[0], `"Archive/Reports 2024"`) {
		t.Errorf("LIST after RENAME: %q", got)
	}
	if got := grep(c.ok(`SELECT "Archive/Reports 2024"`), `EXISTS`); len(got) != 1 || got[0] != "* 1 EXISTS" {
		t.Errorf("renamed mailbox: %q", got)
	}
	c.ok("UNSELECT")
	if _, status := c.cmd(`RENAME "Nope" "Other"`); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("RENAME of a missing mailbox: %s", status)
	}
	c.ok(`DELETE "Archive/Reports 2024"`)
	if _, status := c.cmd(`DELETE "Archive/Reports 2024"`); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("DELETE twice: %s", status)
	}
	if _, status := c.cmd(`DELETE INBOX`); !strings.HasPrefix(status, "NO") {
		t.Errorf("DELETE INBOX: %s", status)
	}
	c.ok(`CREATE "Spam" (USE (\Junk))`)
	// \All and \Flagged would be virtual mailboxes, which Letterbox does not have.
	for _, use := range []string{`\Bogus`, `\Flagged`, `\Sent \Trash`} {
		if _, status := c.cmd(`CREATE "Mine" (USE (%s))`, use); !strings.HasPrefix(status, "NO [USEATTR]") {
			t.Errorf("CREATE with special use %s: %s", use, status)
		}
	}
}

func TestCreateSpecialUse(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if err := c.Create("Outbox", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "Outbox", nil).Collect()
	if err != nil || len(list) != 1 || !slices.Contains(list[0].Attrs, imap.MailboxAttrSent) {
		t.Errorf("LIST Outbox: %+v %v", list, err)
	}
}

func TestModifiedUTF7Names(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok(`CREATE "Entw&APw-rfe"`)
	if got := grep(c.ok(`LIST "" "*"`), `Entw`); len(got) != 1 || !strings.HasSuffix(got[0], `"Entw&APw-rfe"`) {
		t.Errorf("LIST: %q", got)
	}
	if _, err := e.st.MailboxByName(t.Context(), e.acct.ID, "Entwürfe"); err != nil {
		t.Errorf("the store does not hold the UTF-8 name: %v", err)
	}
	msg := plainMessage("Draft", "x\r\n")
	c.ok("APPEND \"Entw&APw-rfe\" {%d+}\r\n%s", len(msg), msg)
	if got := grep(c.ok(`SELECT "Entw&APw-rfe"`), `EXISTS`); len(got) != 1 || got[0] != "* 1 EXISTS" {
		t.Errorf("SELECT: %q", got)
	}
	// With UTF8=ACCEPT (RFC 6855) names travel in UTF-8.
	c.ok("ENABLE UTF8=ACCEPT")
	if got := grep(c.ok(`LIST "" "Entw*"`), `Entw`); len(got) != 1 || !strings.HasSuffix(got[0], `"Entwürfe"`) {
		t.Errorf("LIST with UTF8=ACCEPT: %q", got)
	}
}

func TestSubscriptions(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	c.ok(`CREATE "Lists"`)
	c.ok(`UNSUBSCRIBE "Lists"`)
	if got := c.ok(`LSUB "" "*"`); len(grep(got, `"Lists"`)) != 0 || len(grep(got, `INBOX`)) != 1 {
		t.Errorf("LSUB after UNSUBSCRIBE: %q", got)
	}
	c.ok(`SUBSCRIBE "Lists"`)
	if got := grep(c.ok(`LIST (SUBSCRIBED) "" "L*"`), `Lists`); len(got) != 1 || !strings.Contains(got[0], `\Subscribed`) {
		t.Errorf("LIST (SUBSCRIBED): %q", got)
	}
	// RFC 3501 §6.3.6: a subscription is a name of its own: CREATE does not subscribe,
	// DELETE does not unsubscribe, and a name without a mailbox can be subscribed; LIST
	// (SUBSCRIBED) shows it \NonExistent (RFC 5258 §3.4).
	c.ok(`CREATE "Fresh"`)
	if got := grep(c.ok(`LSUB "" "Fresh"`), "LSUB"); len(got) != 0 {
		t.Errorf("CREATE subscribed: %q", got)
	}
	c.ok(`SUBSCRIBE "Nope"`)
	c.ok(`DELETE "Lists"`)
	got := c.ok(`LIST (SUBSCRIBED) "" "*"`)
	for _, name := range []string{"Nope", "Lists"} {
		if l := grep(got, `"`+name+`"$`); len(l) != 1 || !strings.Contains(l[0], `\NonExistent`) || !strings.Contains(l[0], `\Subscribed`) {
			t.Errorf("LIST (SUBSCRIBED) of %s, subscribed without a mailbox: %q", name, got)
		}
	}
	if l := grep(c.ok(`LIST "" "*"`), `"(Nope|Lists)"$`); len(l) != 0 {
		t.Errorf("plain LIST shows subscriptions without mailboxes: %q", l)
	}
	if l := grep(c.ok(`LSUB "" "*"`), `"(Nope|Lists)"$`); len(l) != 2 {
		t.Errorf("LSUB of names without mailboxes: %q", l)
	}
	c.ok(`UNSUBSCRIBE "Nope"`)
	if l := grep(c.ok(`LSUB "" "*"`), `"Nope"$`); len(l) != 0 {
		t.Errorf("LSUB after UNSUBSCRIBE of a name without a mailbox: %q", l)
	}

	// RFC 3501 §6.3.9: "%" matching a name that is not subscribed but has subscribed names
	// below it gives that name \Noselect; LIST (SUBSCRIBED RECURSIVEMATCH) gives CHILDINFO.
	c.ok(`CREATE "Top/Sub"`)
	c.ok(`SUBSCRIBE "Top/Sub"`)
	if l := grep(c.ok(`LSUB "" "%%"`), `"Top"$`); len(l) != 1 || !strings.HasPrefix(l[0], `* LSUB (\Noselect) `) {
		t.Errorf("LSUB %% of a parent of a subscription: %q", l)
	}
	if l := grep(c.ok(`LSUB "" "*"`), `"Top"$`); len(l) != 0 {
		t.Errorf("LSUB * shows the parent too: %q", l)
	}
	if l := grep(c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%%"`), `"Top"`); len(l) != 1 || !strings.Contains(l[0], `("CHILDINFO" ("SUBSCRIBED"))`) { // RFC 5258 §3.5's own example
		t.Errorf("LIST (SUBSCRIBED RECURSIVEMATCH) %%: %q", l)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	msgs := []string{plainMessage("A", "a\r\n"), plainMessage("B", "bb\r\n"), plainMessage("C", "ccc\r\n")}
	var last uint32
	for i, m := range msgs {
		flags := []string{}
		if i == 0 {
			flags = append(flags, `\Seen`)
		}
		if i == 2 {
			flags = append(flags, `\Deleted`)
		}
		last = e.deliver("INBOX", m, flags...).UID
	}
	inbox := e.mailbox("INBOX")
	c := e.rawLogin()
	got := c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE DELETED RECENT APPENDLIMIT)")
	size := len(msgs[0]) + len(msgs[1]) + len(msgs[2])
	want := []string{"MESSAGES 3", "UNSEEN 2", "UIDNEXT " + itoa(last+1), "UIDVALIDITY " + itoa(inbox.UIDValidity),
		"SIZE " + itoa(uint32(size)), "DELETED 1", "RECENT 3", "APPENDLIMIT 52428800"}
	for _, w := range want {
		if len(got) != 1 || !strings.Contains(got[0], w) {
			t.Errorf("STATUS lacks %s: %q", w, got)
		}
	}
	if _, status := c.cmd("STATUS Nope (MESSAGES)"); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("STATUS of a missing mailbox: %s", status)
	}
	// LIST-STATUS (RFC 5819).
	got = c.ok(`LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))`)
	if len(got) != 2 || got[1] != "* STATUS INBOX (MESSAGES 3 UNSEEN 2)" {
		t.Errorf("LIST RETURN (STATUS): %q", got)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestUndecodableArguments: arguments the parser cannot decode are the client's fault: a
// mailbox name that is not modified UTF-7 (RFC 3501 §5.1.3) gets NO [CLIENTBUG], as
// Dovecot answers NO (imaptest's atoms script); a LIST pattern that is not matches nothing;
// a number beyond 32 bits or a bad date is a syntax error, BAD. The session goes on, and
// the log calls them the client's malformed input, not a warning: a client could otherwise
// fill the log with warnings at will.
func TestUndecodableArguments(t *testing.T) {
	e := newEnv(t)
	c := e.rawLogin()
	// A LIST pattern that is not modified UTF-7 matches nothing.
	if got := c.ok("%s", "LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*"); len(got) != 0 {
		t.Errorf("LIST of a pattern not in modified UTF-7: %q", got)
	}
	for cmd, want := range map[string]string{
		`SELECT "&Jjo"`: "NO [CLIENTBUG] ",
		"SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}":                  "NO [CLIENTBUG] ",
		`STATUS "&Jjo" (MESSAGES)`:                                 "NO [CLIENTBUG] ",
		`RENAME INBOX "&AGE-"`:                                     "NO [CLIENTBUG] ", // encodes "a", which must be written as itself
		"APPEND \"&Jjo\" {1+}\r\nx":                                "NO [CLIENTBUG] ",
		`FETCH 99999999999 FLAGS`:                                  "BAD ",
		`SEARCH SINCE 31-Foo-2020`:                                 "BAD ",
		`APPEND INBOX "99-Jan-2020 00:00:00 +0000" {1+}` + "\r\nx": "BAD ",
	} {
		if _, status := c.cmd("%s", cmd); !strings.HasPrefix(status, want) {
			t.Errorf("%q: %s, want %s", cmd, status, want)
		}
		c.ok("NOOP")
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `msg="malformed client input"`); n < 8 {
		t.Errorf("%d undecodable commands logged as malformed client input, want 8:\n%s", n, logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "handling") {
			t.Errorf("undecodable client input logged as a warning: %s", line)
		}
	}
}

// failingSearchStore fails to read messages' text for SEARCH with a fault of the server's
// own.
type failingSearchStore struct{ mailStore }

func (failingSearchStore) SearchData(context.Context, int64, ...store.UIDRange) ([]store.SearchData, error) {
	return nil, errors.New("injected storage fault")
}

// TestServerFaultStaysOurs: a command the session handled and failed on is answered NO
// [SERVERBUG], never taken for the client's bug: only commands the parser failed to decode
// are (TestUndecodableArguments).
func TestServerFaultStaysOurs(t *testing.T) {
	e := newEnv(t, func(_ *Options, ms *mailStore) { *ms = failingSearchStore{*ms} })
	e.deliver("INBOX", "Subject: x\r\n\r\nbody text\r\n")
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	_, status := c.cmd(`SEARCH BODY "text"`)
	if !strings.HasPrefix(status, "NO [SERVERBUG]") {
		t.Errorf("SEARCH failing in the store: %s, want NO [SERVERBUG], the server's fault", status)
	}
	c.ok("NOOP")
}
