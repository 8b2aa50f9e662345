package imap

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// searchEnv holds three messages as the acceptance suite's SEARCH check has them, and a
// fourth with a quoted-printable, ISO-8859-1 body and a custom header.
func searchEnv(t *testing.T) (*testEnv, *rawClient) {
	e := newEnv(t)
	ctx := context.Background()
	msgs := []struct {
		raw   string
		date  time.Time
		flags []string
	}{
		{"From: Carol Jones <carol@example.net>\r\nTo: alice@example.com\r\nCc: Bob <bob@example.org>\r\n" +
			"Subject: Quarterly numbers\r\nDate: Fri, 10 Jan 2020 08:00:00 +0000\r\n\r\nThe pineapple harvest doubled.\r\n",
			time.Date(2020, 1, 10, 12, 0, 0, 0, time.UTC), []string{store.FlagSeen}},
		{"From: Dave <dave@example.com>\r\nTo: alice@example.com\r\nSubject: Lunch on Friday?\r\n" +
			"Date: Sat, 15 Jun 2024 08:00:00 +0000\r\n\r\nShall we try the new place?\r\n",
			time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC), nil},
		{"From: Carol Jones <carol@example.net>\r\nTo: alice@example.com\r\nSubject: Re: lunch plans\r\n" +
			"Date: Thu, 20 Jun 2024 08:00:00 +0000\r\nX-Priority: 1 (Highest)\r\n\r\nPineapple pizza it is.\r\n",
			time.Date(2024, 6, 20, 12, 0, 0, 0, time.UTC), []string{store.FlagSeen, store.FlagFlagged, "$Work"}},
		{"From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.de>\r\nTo: alice@example.com\r\n" +
			"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Sch=F6ne Gr=FC=DFe vom Dom.\r\n",
			time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC), []string{store.FlagDeleted}},
	}
	for _, m := range msgs {
		if _, err := e.st.Deliver(ctx, e.acct.ID, strings.NewReader(m.raw),
			store.DeliverOptions{Flags: m.flags, InternalDate: m.date}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	return e, c
}

func TestSearchKeys(t *testing.T) {
	_, c := searchEnv(t)
	for _, tt := range []struct{ criteria, want string }{
		{"ALL", "1 2 3 4"},
		{"UNSEEN", "2 4"},
		{"SEEN", "1 3"},
		{`FROM "carol"`, "1 3"},
		{`FROM "CAROL JONES"`, "1 3"},
		{`FROM "jörg"`, "4"},
		{`TO "alice@example.com"`, "1 2 3 4"},
		{`CC "bob"`, "1"},
		{`BCC "bob"`, ""},
		{`SUBJECT "quarterly"`, "1"},
		{`SUBJECT "grüße"`, "4"},
		{`TEXT "pineapple"`, "1 3"},
		{`TEXT "Quarterly"`, "1"},
		{`BODY "pineapple"`, "1 3"},
		{`BODY "quarterly"`, ""},
		{`BODY "schöne grüße"`, "4"},
		{`HEADER "X-Priority" "highest"`, "3"},
		{`HEADER "X-Priority" ""`, "3"},
		{`HEADER "Subject" "köln"`, "4"},
		{"SINCE 1-Jan-2024", "2 3 4"},
		{"BEFORE 15-Jun-2024", "1"},
		{"ON 15-Jun-2024", "2"},
		{"SENTSINCE 16-Jun-2024", "3"},
		{"SENTBEFORE 1-Jan-2021", "1"},
		{"SENTON 20-Jun-2024", "3"},
		{"UNSEEN SINCE 1-Jun-2024", "2 4"},
		{`NOT FROM "carol"`, "2 4"},
		{`OR SUBJECT "quarterly" FROM "dave"`, "1 2"},
		{`FLAGGED`, "3"},
		{`UNFLAGGED`, "1 2 4"},
		{`DELETED`, "4"},
		{`UNDELETED`, "1 2 3"},
		{`ANSWERED`, ""},
		{`UNANSWERED`, "1 2 3 4"},
		{`DRAFT`, ""},
		{`UNDRAFT`, "1 2 3 4"},
		{`KEYWORD $work`, "3"},
		{`UNKEYWORD $Work`, "1 2 4"},
		{`RECENT`, "1 2 3 4"}, // this session was the first to see them
		{`NEW`, "2 4"},
		{`OLD`, ""},
		{`LARGER 10000`, ""},
		{`SMALLER 10000`, "1 2 3 4"},
		{`2:3`, "2 3"},
		{`3:*`, "3 4"},
		{`UID 1,4`, "1 4"},
		{`(FROM "carol" SEEN) NOT FLAGGED`, "1"},
		{`CHARSET UTF-8 SUBJECT "grüße"`, "4"},
	} {
		got := grep(c.ok("SEARCH %s", tt.criteria), `^\* SEARCH`)
		if len(got) != 1 || strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH")) != tt.want {
			t.Errorf("SEARCH %s = %q, want %q", tt.criteria, got, tt.want)
		}
	}
	if _, status := c.cmd(`SEARCH CHARSET KOI8-R ALL`); !strings.HasPrefix(status, "NO [BADCHARSET") {
		t.Errorf("unknown charset: %s", status)
	}
	if _, status := c.cmd(`SEARCH FROBNICATE`); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown key: %s", status)
	}
}

func TestSearchSize(t *testing.T) {
	e, c := searchEnv(t)
	msgs, err := e.st.Messages(t.Context(), e.mailbox("INBOX").ID)
	if err != nil {
		t.Fatal(err)
	}
	n := msgs[1].Size // the second message's size: LARGER and SMALLER are strict
	var larger, smaller []string
	for i, m := range msgs {
		if m.Size > n {
			larger = append(larger, itoa(uint32(i+1)))
		}
		if m.Size < n {
			smaller = append(smaller, itoa(uint32(i+1)))
		}
	}
	for key, want := range map[string][]string{"LARGER": larger, "SMALLER": smaller} {
		got := grep(c.ok("SEARCH %s %d", key, n), `^\* SEARCH`)
		if len(got) != 1 || strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH")) != strings.Join(want, " ") {
			t.Errorf("SEARCH %s %d = %q, want %q", key, n, got, want)
		}
	}
}

func TestSearchUIDAndExtensions(t *testing.T) {
	_, c := searchEnv(t)
	c.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	c.ok("UID EXPUNGE 1") // UIDs 2 3 4 are left, as sequence numbers 1 2 3
	if got := grep(c.ok(`UID SEARCH FROM "carol"`), `^\* SEARCH`); len(got) != 1 || got[0] != "* SEARCH 3" {
		t.Errorf("UID SEARCH: %q", got)
	}
	if got := grep(c.ok(`SEARCH FROM "carol"`), `^\* SEARCH`); len(got) != 1 || got[0] != "* SEARCH 2" {
		t.Errorf("SEARCH after EXPUNGE: %q", got)
	}
	// ESEARCH (RFC 4731).
	got := c.ok(`UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN`)
	if len(got) != 1 || !strings.Contains(got[0], "UID ALL 2,4 MIN 2 MAX 4 COUNT 2") {
		t.Errorf("ESEARCH: %q", got)
	}
	// SEARCHRES (RFC 5182): save, then use "$".
	c.ok(`SEARCH RETURN (SAVE) FLAGGED`)
	got = grep(c.ok(`FETCH $ (UID)`), `FETCH`)
	if len(got) != 1 || got[0] != "* 2 FETCH (UID 3)" {
		t.Errorf("FETCH $: %q", got)
	}
	if got := grep(c.ok(`UID SEARCH $`), `SEARCH`); len(got) != 1 || got[0] != "* SEARCH 3" {
		t.Errorf("SEARCH $: %q", got)
	}
}

// TestSearchTextAcrossWindows: text is loaded a window of messages at a time; matches in
// every window are found, and a message expunged by another session before its window
// is loaded simply does not match.
func TestSearchTextAcrossWindows(t *testing.T) {
	defer func(old int64) { textWindowBytes = old }(textWindowBytes)
	textWindowBytes = 400 // a couple of these messages per window
	e := newEnv(t)
	var want []string
	for i := 1; i <= 12; i++ {
		word := "haystack"
		if i%4 == 1 {
			word = "needle"
			if i != 9 {
				want = append(want, fmt.Sprint(i))
			}
		}
		e.deliver("INBOX", fmt.Sprintf("From: a@example.com\r\nSubject: message %d\r\n\r\nA %s in message %d.\r\n", i, word, i))
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	// Another writer removes message 9 behind this session's back: its view still has it.
	if _, err := e.st.Expunge(context.Background(), e.mailbox("INBOX").ID, []uint32{9}); err != nil {
		t.Fatal(err)
	}
	got := grep(c.ok(`UID SEARCH TEXT "needle"`), `^\* SEARCH`)
	if len(got) != 1 || strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH")) != strings.Join(want, " ") {
		t.Fatalf("UID SEARCH TEXT needle = %q, want %q", got, want)
	}
	if got := grep(c.ok(`UID SEARCH NOT BODY "haystack" SUBJECT "message 1"`), `^\* SEARCH`); len(got) != 1 ||
		strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH")) != "1" {
		t.Fatalf("NOT BODY haystack SUBJECT \"message 1\" = %q, want 1", got)
	}
}

// withoutSearchIndex makes the server search as a build without FTS5 does: by reading
// every message's text.
func withoutSearchIndex() envOption {
	return func(_ *Options, ms *mailStore) { *ms = noIndexStore{*ms} }
}

type noIndexStore struct{ mailStore }

func (noIndexStore) SearchCandidates(context.Context, int64, []store.SearchTerm) ([]uint32, bool, error) {
	return nil, false, nil
}

// The full-text index only makes SEARCH faster: the same searches, with the index and
// without it, give the same answers, for non-ASCII text, short terms, terms spanning words,
// header and body text, charset-decoded bodies and keys under NOT and OR.
func TestSearchSameWithAndWithoutIndex(t *testing.T) {
	indexed, scanned := newEnv(t), newEnv(t, withoutSearchIndex())
	if !indexed.st.SearchIndexed() {
		if os.Getenv("CI") != "" {
			t.Fatal("SQLite without FTS5 in CI: build with -tags sqlite_fts5 (make test does)")
		}
		t.Skip("SQLite built without FTS5 (build tag sqlite_fts5)")
	}
	msgs := []string{
		plainMessage("Quarterly numbers", "The pineapple harvest doubled."),
		plainMessage("Lunch on Friday?", "Shall we try the new place? ab cd"),
		"From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.de>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n" +
			"X-Priority: 1 (Highest)\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\nSch=F6ne Gr=FC=DFe vom Dom. STRASSE Stra=DFe\r\n",
		"Subject: units\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\u212Aelvin and \u0130stanbul, \u03a3\u039f\u03a6\u0399\u0391 \"quoted\" x\r\n",
		"Subject: mixed\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: text/plain\r\n\r\nsee the attached pineapple\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\ncGluZWFwcGxlIGluIGFuIGF0dGFjaG1lbnQ=\r\n--b--\r\n",
		plainMessage("nothing", "zz"),
	}
	for _, e := range []*testEnv{indexed, scanned} {
		for i, m := range msgs {
			var flags []string
			if i%2 == 0 {
				flags = []string{store.FlagSeen}
			}
			e.deliver("INBOX", m, flags...)
		}
	}
	ci, cs := indexed.rawLogin(), scanned.rawLogin()
	ci.ok("SELECT INBOX")
	cs.ok("SELECT INBOX")
	for _, criteria := range []string{
		`TEXT "pineapple"`, `TEXT "PINEAPPLE"`, `BODY "pineapple"`, `TEXT "harvest doubled"`,
		`TEXT "ple har"`, `TEXT "quarterly"`, `BODY "quarterly"`, `TEXT "subject: qu"`,
		`TEXT "ab"`, `TEXT "b c"`, `TEXT "z"`, `TEXT "zz"`, `BODY "zzz"`, `TEXT ""`,
		`TEXT "grüße"`, `TEXT "köln"`, `BODY "schöne grüße"`, `BODY "straße"`, `TEXT "strasse"`,
		`TEXT "kelvin"`, `TEXT "\u212Aelvin"`, `TEXT "istanbul"`, `TEXT "\u0130stanbul"`, `TEXT "σοφια"`,
		`TEXT "ΣΟΦΙΑ"`, `TEXT "\"quoted\""`, `TEXT "jörg"`, `TEXT "attachment"`, `BODY "aGluZWFw"`,
		`HEADER "X-Priority" "highest"`, `HEADER "X-Priority" ""`, `HEADER "Subject" "aus k"`,
		`HEADER "Subject" "pineapple"`, `NOT TEXT "pineapple"`, `OR TEXT "pineapple" TEXT "kelvin"`,
		`SEEN TEXT "pineapple"`, `UNSEEN BODY "pineapple"`, `TEXT "pineapple" TEXT "attached"`,
		`TEXT "pineapple" NOT BODY "harvest"`, `2:4 TEXT "e"`, `UID 3:* TEXT "the"`,
	} {
		want := grep(cs.ok("SEARCH %s", criteria), `^\* SEARCH`)
		got := grep(ci.ok("SEARCH %s", criteria), `^\* SEARCH`)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("SEARCH %s: with the index %q, without %q", criteria, got, want)
		}
	}
	// Not a vacuous comparison: the index answered, and found what it should.
	if got := grep(ci.ok(`SEARCH TEXT "pineapple"`), `^\* SEARCH`); fmt.Sprint(got) != "[* SEARCH 1 5]" {
		t.Errorf("SEARCH TEXT pineapple = %q", got)
	}
}

// imaptest's search-addresses and search-header: an address with comments inside it, a
// group's name, and HEADER with an empty string, which matches only messages that have
// the field.
func TestSearchAddressesAndFieldPresence(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", "From: <user-from (comment)@ (comment) domain.org>\r\nSubject: hello\r\n\r\nx\r\n")
	e.deliver("INBOX", "From: a@b\r\nTo: groupname: groupuser1@domain.org, groupuser2@domain.org;\r\n\r\nx\r\n")
	e.deliver("INBOX", "From: a@b\r\nTo: emptygroup:;\r\n\r\nx\r\n")
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	for _, tt := range []struct{ criteria, want string }{
		{`FROM user-from@domain.org`, "1"},
		{`TO groupname`, "2"},
		{`TO groupuser2`, "2"},
		{`TO emptygroup`, "3"},
		{`HEADER SUBJECT ""`, "1"},
		{`NOT HEADER SUBJECT ""`, "2 3"},
		{`TO ""`, "2 3"},
	} {
		got := grep(c.ok("SEARCH %s", tt.criteria), `^\* SEARCH`)
		if len(got) != 1 || strings.TrimSpace(strings.TrimPrefix(got[0], "* SEARCH")) != tt.want {
			t.Errorf("SEARCH %s = %q, want %q", tt.criteria, got, tt.want)
		}
	}
	// RFC 3501 §7.4.2: a group is a start marker (NIL host) and an end marker (all NIL).
	// (No space between addresses: RFC 3501 §9 "(" 1*address ")".)
	if got := grep(c.ok("FETCH 3 ENVELOPE"), "FETCH"); len(got) != 1 ||
		!regexp.MustCompile(`\(\(NIL NIL "emptygroup" NIL\) ?\(NIL NIL NIL NIL\)\)`).MatchString(got[0]) {
		t.Errorf("ENVELOPE of an empty group: %q", got)
	}
}
