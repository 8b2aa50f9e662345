package imap

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// wire is a client's byte stream for a commandReader, counting the continuation requests
// the reader asks for.
type wire struct {
	r     *commandReader
	conts int
}

func newWire(input string) *wire {
	w := &wire{}
	w.r = newCommandReader(bufio.NewReaderSize(strings.NewReader(input), 64), func() error {
		w.conts++
		return nil
	})
	return w
}

// next reads the next command; an *imap.Error is answered (here: returned) and the rest
// of the command skipped, as the session does.
func (w *wire) next(t *testing.T) (*command, *imap.Error) {
	t.Helper()
	cmd, err := w.r.readCommand()
	var ie *imap.Error
	if errors.As(err, &ie) {
		return cmd, ie
	}
	if err != nil {
		t.Fatalf("readCommand: %v", err)
	}
	return cmd, nil
}

func parseOK(t *testing.T, input string) *command {
	t.Helper()
	w := newWire(input)
	cmd, ie := w.next(t)
	if ie != nil {
		t.Fatalf("%q: %s %s %s", input, ie.Type, ie.Code, ie.Text)
	}
	return cmd
}

func parseErr(t *testing.T, input string) *imap.Error {
	t.Helper()
	w := newWire(input)
	_, ie := w.next(t)
	if ie == nil {
		t.Fatalf("%q parsed, want an error", input)
	}
	return ie
}

func TestParseLoginStrings(t *testing.T) {
	for _, tc := range []struct {
		in         string
		user, pass string
		conts      int
	}{
		{"a1 LOGIN alice secret\r\n", "alice", "secret", 0},
		{"a1 login \"al ice\" \"se\\\"c\\\\ret\"\r\n", "al ice", `se"c\ret`, 0},
		{"a1 LOGIN {5}\r\nalice {3}\r\n\"x}\r\n", "alice", `"x}`, 2},
		{"a1 LOGIN {5+}\r\nalice \"pw\"\r\n", "alice", "pw", 0},
		{"a1 LOGIN \"gr\u00fc\u00df\" x]y\n", "gr\u00fc\u00df", "x]y", 0}, // UTF-8 quoted (RFC 9051), bare LF
	} {
		w := newWire(tc.in)
		cmd, ie := w.next(t)
		if ie != nil {
			t.Fatalf("%q: %v", tc.in, ie)
		}
		a := cmd.args.(*loginArgs)
		if cmd.tag != "a1" || cmd.name != "LOGIN" || a.username != tc.user || a.password != tc.pass || w.conts != tc.conts {
			t.Errorf("%q: %q %q %+v, %d continuations", tc.in, cmd.tag, cmd.name, a, w.conts)
		}
	}
}

func TestParseBadSyntaxKeepsTheTag(t *testing.T) {
	for in, want := range map[string]string{
		"a1 LOGIN\r\n":              "a1",
		"a1 LOGIN a b c\r\n":        "a1",
		"a1 XYZZY\r\n":              "a1",
		"a1 UID NOOP\r\n":           "a1",
		"+1 NOOP\r\n":               "",
		"a1 LOGIN \"a\rb\" c\r\n":   "a1",
		"a1 FETCH 0 FLAGS\r\n":      "a1",
		"a1 FETCH 1:x FLAGS\r\n":    "a1",
		"a1 FETCH 4294967296 UID\n": "a1",
		"a1 LOGIN \"\xff\" b\r\n":   "a1",
	} {
		w := newWire(in + "b2 NOOP\r\n")
		cmd, ie := w.next(t)
		if ie == nil || ie.Type != imap.StatusResponseTypeBad || cmd.tag != want {
			t.Errorf("%q: %+v (tag %q), want BAD for tag %q", in, ie, cmd.tag, want)
			continue
		}
		// The rest of the line is skipped; the next command is read.
		if cmd, ie := w.next(t); ie != nil || cmd.tag != "b2" || cmd.name != "NOOP" {
			t.Errorf("after %q: %+v %v", in, cmd, ie)
		}
	}
}

func TestParseEmptyLinesSkipped(t *testing.T) {
	if cmd := parseOK(t, "\r\n\r\n\na NOOP\r\n"); cmd.name != "NOOP" {
		t.Errorf("got %+v", cmd)
	}
}

func TestParseNumSets(t *testing.T) {
	for in, want := range map[string]imap.SeqSet{
		"1":          {{Start: 1, Stop: 1}},
		"4:2":        {{Start: 2, Stop: 4}},
		"*":          {{Start: 0, Stop: 0}},
		"3:*":        {{Start: 3, Stop: 0}},
		"*:3":        {{Start: 3, Stop: 0}},
		"1,3:5,7:*":  {{Start: 1, Stop: 1}, {Start: 3, Stop: 5}, {Start: 7, Stop: 0}},
		"4294967295": {{Start: 4294967295, Stop: 4294967295}},
	} {
		cmd := parseOK(t, "a FETCH "+in+" FLAGS\r\n")
		if got := cmd.args.(*fetchArgs).nums; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	cmd := parseOK(t, "a UID FETCH $ FLAGS\r\n")
	if a := cmd.args.(*fetchArgs); !imap.IsSearchRes(a.nums) || !a.options.UID {
		t.Errorf("UID FETCH $: %+v", a)
	}
	if got := parseOK(t, "a UID COPY 5:3 x\r\n").args.(*copyArgs).nums; !reflect.DeepEqual(got, imap.UIDSet{{Start: 3, Stop: 5}}) {
		t.Errorf("UID COPY: %v", got)
	}
	for _, bad := range []string{"1,", ",1", "1:", "1::2", "0:3", "$,1"} {
		parseErr(t, "a FETCH "+bad+" FLAGS\r\n")
	}
}

func TestParseFetchItems(t *testing.T) {
	cmd := parseOK(t, "a FETCH 1 (UID BODY[1.2.HEADER.FIELDS (From \"X-Y\")]<10.20> BODY.PEEK[TEXT] BINARY[1] BINARY.PEEK[]<0.5> BINARY.SIZE[2.1] RFC822.HEADER RFC822 MODSEQ BODY)\r\n")
	a := cmd.args.(*fetchArgs)
	o := a.options
	if !o.UID || !o.ModSeq || o.BodyStructure == nil || o.BodyStructure.Extended {
		t.Errorf("flags of the options: %+v", o)
	}
	want := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, Part: []int{1, 2}, HeaderFields: []string{"From", "X-Y"}, Partial: &imap.SectionPartial{Offset: 10, Size: 20}},
		{Specifier: imap.PartSpecifierText, Peek: true},
		{Specifier: imap.PartSpecifierHeader, Peek: true},
		{},
	}
	if len(o.BodySection) != len(want) {
		t.Fatalf("%d body sections", len(o.BodySection))
	}
	for i, bs := range o.BodySection {
		if !reflect.DeepEqual(bs, want[i]) {
			t.Errorf("section %d: %+v, want %+v", i, bs, want[i])
		}
	}
	if a.rfc822[o.BodySection[2]] != "RFC822.HEADER" || a.rfc822[o.BodySection[3]] != "RFC822" || a.rfc822[o.BodySection[0]] != "" {
		t.Errorf("RFC822 names: %v", a.rfc822)
	}
	if len(o.BinarySection) != 2 || !reflect.DeepEqual(o.BinarySection[0].Part, []int{1}) ||
		!o.BinarySection[1].Peek || len(o.BinarySection[1].Part) != 0 || o.BinarySection[1].Partial.Size != 5 {
		t.Errorf("binary sections: %+v %+v", o.BinarySection[0], o.BinarySection[1])
	}
	if len(o.BinarySectionSize) != 1 || !reflect.DeepEqual(o.BinarySectionSize[0].Part, []int{2, 1}) {
		t.Errorf("binary size: %+v", o.BinarySectionSize)
	}

	for in, check := range map[string]func(imap.FetchOptions) bool{
		"ALL": func(o imap.FetchOptions) bool {
			return o.Flags && o.InternalDate && o.RFC822Size && o.Envelope && o.BodyStructure == nil
		},
		"FAST": func(o imap.FetchOptions) bool { return o.Flags && o.InternalDate && o.RFC822Size && !o.Envelope },
		"FULL": func(o imap.FetchOptions) bool {
			return o.Envelope && o.BodyStructure != nil && !o.BodyStructure.Extended
		},
		"bodystructure": func(o imap.FetchOptions) bool { return o.BodyStructure != nil && o.BodyStructure.Extended },
		"BODY[3.MIME]":  func(o imap.FetchOptions) bool { return o.BodySection[0].Specifier == imap.PartSpecifierMIME },
		"BODY[HEADER.FIELDS.NOT (A)]": func(o imap.FetchOptions) bool {
			return reflect.DeepEqual(o.BodySection[0].HeaderFieldsNot, []string{"A"})
		},
	} {
		if o := parseOK(t, "a FETCH 1 "+in+"\r\n").args.(*fetchArgs).options; !check(o) {
			t.Errorf("FETCH %s: %+v", in, o)
		}
	}

	m := parseOK(t, "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n").args.(*fetchArgs)
	if m.options.ChangedSince != 12345 || !m.vanished || !m.options.ModSeq {
		t.Errorf("modifiers: %+v", m)
	}
	for _, bad := range []string{
		"BODY[1.]", "BODY[MIME]", "BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS (A:B)]", "BODY.PEEK",
		"BODY[]<1.0>", "BODY[]<1>", "BINARY[TEXT]", "FOO", "(FLAGS", "()", "FLAGS (VANISHED)",
		"FLAGS (CHANGEDSINCE 0)", "BODY[0]",
	} {
		parseErr(t, "a FETCH 1 "+bad+"\r\n")
	}
}

func TestParseStore(t *testing.T) {
	for in, want := range map[string]storeArgs{
		`+FLAGS.SILENT (\seen $Label1)`: {flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "$Label1"}}},
		`-flags \Deleted \Flagged`:      {flags: imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagDeleted, imap.FlagFlagged}}},
		`FLAGS ()`:                      {flags: imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{}}},
		`(UNCHANGEDSINCE 0) FLAGS x`:    {flags: imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{"x"}}, hasUnchanged: true},
		`(UNCHANGEDSINCE 7) +FLAGS (x)`: {flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"x"}}, hasUnchanged: true, unchangedSince: 7},
	} {
		a := parseOK(t, "a STORE 1 "+in+"\r\n").args.(*storeArgs)
		a.nums, want.nums = nil, nil
		if !reflect.DeepEqual(*a, want) {
			t.Errorf("%s: %+v, want %+v", in, *a, want)
		}
	}
	for _, bad := range []string{`FLAGS`, `+FLAGS.LOUD (x)`, `*FLAGS (x)`, `FLAGS (x`, `(FOO 1) FLAGS x`} {
		parseErr(t, "a STORE 1 "+bad+"\r\n")
	}
}

func utcDay(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseSearch(t *testing.T) {
	a := parseOK(t, "a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET utf-8 "+
		"1:3 UID 5,7 $ ANSWERED unseen NEW OLD KEYWORD $Junk UNKEYWORD x "+
		"FROM \"alice\" SUBJECT {2+}\r\nhi HEADER X-Spam yes BODY b TEXT t "+
		"SINCE 1-Feb-2020 BEFORE \"10-Mar-2020\" ON 5-Mar-2020 SENTON 2-Jan-2021 "+
		"LARGER 100 SMALLER 5000 SMALLER 4000 LARGER 10 NOT (DELETED DRAFT) OR SEEN (FLAGGED UNDRAFT) ALL\r\n").args.(*searchArgs)
	if !a.uid || a.charset != "UTF-8" || !a.esearch || !a.options.ReturnMin || !a.options.ReturnCount || !a.options.ReturnSave || a.options.ReturnAll {
		t.Errorf("head: %+v", a)
	}
	c := a.criteria
	if !reflect.DeepEqual(c.SeqNum, []imap.SeqSet{{{Start: 1, Stop: 3}}}) || len(c.UID) != 2 || !reflect.DeepEqual(c.UID[0], imap.UIDSet{{Start: 5, Stop: 5}, {Start: 7, Stop: 7}}) || !imap.IsSearchRes(c.UID[1]) {
		t.Errorf("sets: %v %v", c.SeqNum, c.UID)
	}
	if !reflect.DeepEqual(c.Flag, []imap.Flag{imap.FlagAnswered, "\\Recent", "$Junk"}) ||
		!reflect.DeepEqual(c.NotFlag, []imap.Flag{imap.FlagSeen, imap.FlagSeen, "\\Recent", "x"}) {
		t.Errorf("flags: %v / %v", c.Flag, c.NotFlag)
	}
	if want := []imap.SearchCriteriaHeaderField{{Key: "From", Value: "alice"}, {Key: "Subject", Value: "hi"}, {Key: "X-Spam", Value: "yes"}}; !reflect.DeepEqual(c.Header, want) {
		t.Errorf("headers: %v", c.Header)
	}
	if !reflect.DeepEqual(c.Body, []string{"b"}) || !reflect.DeepEqual(c.Text, []string{"t"}) {
		t.Errorf("body/text: %v %v", c.Body, c.Text)
	}
	// The narrowest of each bound: SINCE 1 Feb and ON 5 Mar give 5 Mar..6 Mar.
	if !c.Since.Equal(utcDay(2020, 3, 5)) || !c.Before.Equal(utcDay(2020, 3, 6)) ||
		!c.SentSince.Equal(utcDay(2021, 1, 2)) || !c.SentBefore.Equal(utcDay(2021, 1, 3)) {
		t.Errorf("dates: %v %v %v %v", c.Since, c.Before, c.SentSince, c.SentBefore)
	}
	if c.Larger != 100 || c.Smaller != 4000 {
		t.Errorf("sizes: larger %d smaller %d", c.Larger, c.Smaller)
	}
	if len(c.Not) != 1 || !reflect.DeepEqual(c.Not[0].Flag, []imap.Flag{imap.FlagDeleted, imap.FlagDraft}) {
		t.Errorf("NOT: %+v", c.Not)
	}
	if len(c.Or) != 1 || !reflect.DeepEqual(c.Or[0][0].Flag, []imap.Flag{imap.FlagSeen}) ||
		!reflect.DeepEqual(c.Or[0][1].Flag, []imap.Flag{imap.FlagFlagged}) || !reflect.DeepEqual(c.Or[0][1].NotFlag, []imap.Flag{imap.FlagDraft}) {
		t.Errorf("OR: %+v", c.Or)
	}

	if a := parseOK(t, "a SEARCH RETURN () ALL\r\n").args.(*searchArgs); !a.options.ReturnAll {
		t.Errorf("RETURN () is RETURN (ALL): %+v", a.options)
	}
	if c := parseOK(t, "a SEARCH SMALLER 0\r\n").args.(*searchArgs).criteria; len(c.Not) != 1 || c.Smaller != 0 {
		t.Errorf("SMALLER 0 must match nothing: %+v", c)
	}
	ms := parseOK(t, "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n").args.(*searchArgs)
	if !ms.modSeq || ms.criteria.ModSeq == nil || ms.criteria.ModSeq.ModSeq != 620162338 || ms.criteria.ModSeq.MetadataName != `/flags/\draft` {
		t.Errorf("MODSEQ: %+v", ms.criteria.ModSeq)
	}
	if ie := parseErr(t, "a SEARCH CHARSET KOI8-R ALL\r\n"); ie.Type != imap.StatusResponseTypeNo || !strings.HasPrefix(string(ie.Code), "BADCHARSET") {
		t.Errorf("unknown charset: %+v", ie)
	}
	for _, bad := range []string{"", "FOO", "ALL ", "(ALL", "()", "OR SEEN", "NOT", "SINCE 31-Feb-2020", "SINCE 1-Foo-2020",
		"LARGER x", "UID *:x", "HEADER From", "RETURN (BAR) ALL", "KEYWORD \\Seen", "SINCE 1-Jan-20"} {
		parseErr(t, "a SEARCH "+bad+"\r\n")
	}
	// Nesting is bounded.
	deep := strings.Repeat("(", nestingLimit+1) + "ALL" + strings.Repeat(")", nestingLimit+1)
	if ie := parseErr(t, "a SEARCH "+deep+"\r\n"); ie.Code != imap.ResponseCodeLimit {
		t.Errorf("deep nesting: %+v", ie)
	}
	deep = strings.Repeat("NOT ", nestingLimit+1) + "ALL"
	if ie := parseErr(t, "a SEARCH "+deep+"\r\n"); ie.Code != imap.ResponseCodeLimit {
		t.Errorf("deep NOT: %+v", ie)
	}
	parseOK(t, "a SEARCH "+strings.Repeat("(", nestingLimit)+"ALL"+strings.Repeat(")", nestingLimit)+"\r\n")
}

func TestParseSelectModifiers(t *testing.T) {
	if a := parseOK(t, "a SELECT inbox\r\n").args.(*selectArgs); a.mailbox != "INBOX" || a.condStore || a.qresync != nil {
		t.Errorf("SELECT inbox: %+v", a)
	}
	if a := parseOK(t, "a EXAMINE x (CONDSTORE)\r\n").args.(*selectArgs); !a.condStore {
		t.Errorf("CONDSTORE: %+v", a)
	}
	a := parseOK(t, "a SELECT x (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:10 5:14)))\r\n").args.(*selectArgs)
	q := a.qresync
	if q == nil || q.uidValidity != 67890007 || q.modSeq != 20050715194045000 ||
		!reflect.DeepEqual(q.knownUIDs, imap.UIDSet{{Start: 41, Stop: 41}, {Start: 43, Stop: 211}, {Start: 214, Stop: 541}}) ||
		q.seqMatch == nil || !reflect.DeepEqual(q.seqMatch.seqs, imap.SeqSet{{Start: 1, Stop: 10}}) {
		t.Errorf("QRESYNC: %+v", q)
	}
	for _, bad := range []string{"x ()", "x (FOO)", "x (QRESYNC (1))", "x (QRESYNC (0 1))", "x (QRESYNC (1 2 (1 2) 3:4))"} {
		parseErr(t, "a SELECT "+bad+"\r\n")
	}
}

func TestParseMailboxNames(t *testing.T) {
	for in, want := range map[string]string{
		`"Entw&APw-rfe"`:             "Entwürfe",
		`&ZeVnLIqe-`:                 "日本語",
		`"a&-b"`:                     "a&b",
		`"&2D3eAA-"`:                 "\U0001f600", // a surrogate pair
		`InBoX`:                      "INBOX",
		`"inbox/Sub"`:                "inbox/Sub",
		`{12+}` + "\r\nEntw&APw-rfe": "Entwürfe",
	} {
		if got := parseOK(t, "a DELETE "+in+"\r\n").args.(*mailboxArgs).mailbox; got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{`"&Jjo"`, `"&AGE-"`, `"&Jjo-&Jjo-"`, `"&2D0-"`, `"&-"&`, `"gr` + "\u00fc" + `n"`, `"&ZeVnLIqe"`, `"&Jj!-"`} {
		ie := parseErr(t, "a DELETE "+bad+"\r\n")
		if ie.Type != imap.StatusResponseTypeNo && !strings.Contains(bad, `"&-"&`) {
			t.Errorf("%s: %+v, want NO (Dovecot's answer to a name that is not modified UTF-7)", bad, ie)
		}
	}
	// With UTF-8 names, a name is taken as it is.
	w := newWire("a DELETE \"gr\u00fcn&\"\r\n")
	w.r.utf8Names = true
	if cmd, ie := w.next(t); ie != nil || cmd.args.(*mailboxArgs).mailbox != "grün&" {
		t.Errorf("UTF-8 name: %+v %v", cmd, ie)
	}
}

func TestModifiedUTF7RoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "a&b", "&&", "Entwürfe", "日本語/子", "\U0001f600 x \u00e9\u00e9", "~!@#$%^&*()", "\u00e9&\u00e9"} {
		enc := encodeModifiedUTF7(s)
		for i := range len(enc) {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("%q encoded as %q: not printable ASCII", s, enc)
			}
		}
		if dec, err := decodeModifiedUTF7(enc); err != nil || dec != s {
			t.Errorf("%q → %q → %q, %v", s, enc, dec, err)
		}
	}
	if got := encodeModifiedUTF7("Entwürfe"); got != "Entw&APw-rfe" {
		t.Errorf("Entwürfe: %q", got)
	}
}

func TestParseListAndStatus(t *testing.T) {
	a := parseOK(t, "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a*\" %/b) RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE))\r\n").args.(*listArgs)
	if !a.extended || a.ref != "" || !reflect.DeepEqual(a.patterns, []string{"a*", "%/b"}) ||
		!a.options.SelectSubscribed || !a.options.SelectRecursiveMatch || !a.options.ReturnChildren ||
		a.options.ReturnStatus == nil || !a.options.ReturnStatus.NumMessages || !a.options.ReturnStatus.Size {
		t.Errorf("LIST-EXTENDED: %+v", a)
	}
	if a := parseOK(t, "a LIST \"\" *\r\n").args.(*listArgs); a.extended || a.patterns[0] != "*" {
		t.Errorf("LIST: %+v", a)
	}
	if a := parseOK(t, "a LSUB \"\" Entw&APw-*\r\n").args.(*listArgs); !a.lsub || a.patterns[0] != "Entwü*" {
		t.Errorf("LSUB: %+v", a)
	}
	s := parseOK(t, "a STATUS Sent (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT)\r\n").args.(*statusArgs)
	if want := (imap.StatusOptions{NumMessages: true, NumRecent: true, UIDNext: true, UIDValidity: true, NumUnseen: true,
		NumDeleted: true, Size: true, HighestModSeq: true, AppendLimit: true}); s.mailbox != "Sent" || *s.items != want {
		t.Errorf("STATUS: %+v", s.items)
	}
	for _, bad := range []string{"LIST (RECURSIVEMATCH) \"\" *", "LIST \"\" * RETURN (FOO)", "LIST (FOO) \"\" *", "LIST \"\"", "STATUS x ()", "STATUS x (FOO)"} {
		parseErr(t, "a "+bad+"\r\n")
	}
	if c := parseOK(t, "a CREATE Spam (USE (\\Junk))\r\n").args.(*createArgs); !reflect.DeepEqual(c.specialUse, []imap.MailboxAttr{imap.MailboxAttrJunk}) {
		t.Errorf("CREATE USE: %+v", c)
	}
	if e := parseOK(t, "a ENABLE utf8=accept CONDSTORE\r\n").args.(*enableArgs); !reflect.DeepEqual(e.caps, []imap.Cap{"UTF8=ACCEPT", "CONDSTORE"}) {
		t.Errorf("ENABLE: %+v", e)
	}
	if r := parseOK(t, "a RENAME a \"b c\"\r\n").args.(*renameArgs); r.from != "a" || r.to != "b c" {
		t.Errorf("RENAME: %+v", r)
	}
	au := parseOK(t, "a AUTHENTICATE plain AGFsaWNlAHNlY3JldA==\r\n").args.(*authenticateArgs)
	if au.mechanism != "PLAIN" || string(au.initialResponse) != "\x00alice\x00secret" {
		t.Errorf("AUTHENTICATE: %+v", au)
	}
	if au := parseOK(t, "a AUTHENTICATE PLAIN =\r\n").args.(*authenticateArgs); au.initialResponse == nil || len(au.initialResponse) != 0 {
		t.Errorf("AUTHENTICATE with an empty initial response: %+v", au)
	}
	if au := parseOK(t, "a AUTHENTICATE LOGIN\r\n").args.(*authenticateArgs); au.initialResponse != nil {
		t.Errorf("AUTHENTICATE without an initial response: %+v", au)
	}
}

// appendAll reads every message of an APPEND, as its handler does.
func appendAll(t *testing.T, a *appendArgs) []string {
	t.Helper()
	var bodies []string
	for m := a.first; m != nil; {
		b, err := io.ReadAll(m.body)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != m.size {
			t.Fatalf("read %d octets of %d", len(b), m.size)
		}
		bodies = append(bodies, string(b))
		if m, err = a.next(); err != nil {
			t.Fatal(err)
		}
	}
	return bodies
}

func TestParseAppendStreams(t *testing.T) {
	w := newWire("a APPEND Drafts (\\Seen \\Draft) \" 7-Feb-1994 21:52:25 -0800\" {10}\r\nhello\r\nyou {3+}\r\nxyz ~{4}\r\n\x00\x01\x02\x03\r\nb NOOP\r\n")
	cmd, ie := w.next(t)
	if ie != nil {
		t.Fatal(ie)
	}
	a := cmd.args.(*appendArgs)
	if w.conts != 0 {
		t.Fatal("asked for the literal before the handler read it")
	}
	m := a.first
	if a.mailbox != "Drafts" || !reflect.DeepEqual(m.flags, []imap.Flag{imap.FlagSeen, imap.FlagDraft}) || m.size != 10 ||
		!m.date.Equal(time.Date(1994, 2, 7, 21, 52, 25, 0, time.FixedZone("", -8*3600))) {
		t.Errorf("first message: %+v", m)
	}
	if got := appendAll(t, a); !reflect.DeepEqual(got, []string{"hello\r\nyou", "xyz", "\x00\x01\x02\x03"}) {
		t.Errorf("bodies %q", got)
	}
	if w.conts != 2 {
		t.Errorf("%d continuation requests, want 2 (not for {3+})", w.conts)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after APPEND: %+v %v", cmd, ie)
	}
}

func TestParseLiteralLimits(t *testing.T) {
	// Over the append limit: NO [TOOBIG] before "+"; the client sends nothing more of it.
	w := newWire("a APPEND INBOX {2000}\r\nb NOOP\r\n")
	w.r.appendLimit = 1000
	if _, ie := w.next(t); ie == nil || ie.Code != imap.ResponseCodeTooBig || ie.Type != imap.StatusResponseTypeNo {
		t.Fatalf("APPEND over the limit: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" || w.conts != 0 {
		t.Errorf("after a refused APPEND: %+v %v, %d continuations", cmd, ie, w.conts)
	}
	// Non-synchronizing: refused, and its data (which looks like commands) skipped.
	w = newWire("a APPEND INBOX {20+}\r\nc NOOP\r\nd NOOP\r\nxx rest {3+}\r\nabc\r\nb NOOP\r\n")
	w.r.appendLimit = 10
	if _, ie := w.next(t); ie == nil || ie.Code != imap.ResponseCodeTooBig {
		t.Fatalf("APPEND {20+} over the limit: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after a refused {20+}: %+v %v", cmd, ie)
	}
	// A buffered literal over its bound.
	w = newWire("a LOGIN {5000}\r\nb LOGIN {4096}\r\n" + strings.Repeat("x", 4096) + " y\r\n")
	if _, ie := w.next(t); ie == nil || ie.Code != imap.ResponseCodeTooBig || w.conts != 0 {
		t.Fatalf("LOGIN {5000}: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != nil || len(cmd.args.(*loginArgs).username) != 4096 || w.conts != 1 {
		t.Errorf("LOGIN {4096}: %v", ie)
	}
	// All the literals of a command together are bounded too.
	many := "a SEARCH" + strings.Repeat(" TEXT {4000+}\r\n"+strings.Repeat("t", 4000), 20) + "\r\nb NOOP\r\n"
	w = newWire(many)
	if _, ie := w.next(t); ie == nil || ie.Code != imap.ResponseCodeTooBig {
		t.Fatalf("20 literals of 4000: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after them: %+v %v", cmd, ie)
	}
	// LITERAL- alone: a non-synchronizing literal over 4096 is BAD [TOOBIG], and skipped.
	w = newWire("a LOGIN {5000+}\r\n" + strings.Repeat("z", 5000) + " x\r\nb NOOP\r\n")
	w.r.literalMinus = true
	if _, ie := w.next(t); ie == nil || ie.Type != imap.StatusResponseTypeBad || ie.Code != imap.ResponseCodeTooBig {
		t.Fatalf("LITERAL- over 4096: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after it: %+v %v", cmd, ie)
	}
	// NUL is no CHAR8 of a literal.
	parseErr(t, "a LOGIN {3+}\r\na\x00b c\r\n")
	// literal8 only where BINARY allows it.
	parseErr(t, "a LOGIN ~{1+}\r\na b\r\n")
}

func TestParseLineLimit(t *testing.T) {
	long := "a SEARCH UID 1" + strings.Repeat(",1", commandLineLimit/2) + "\r\nb NOOP\r\n"
	w := newWire(long)
	cmd, ie := w.next(t)
	if ie != errLineTooLong || cmd.tag != "a" {
		t.Fatalf("overlong: %+v %+v", cmd, ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after the overlong line: %+v %v", cmd, ie)
	}
	// Literals do not count; what follows one does, and a literal in the skipped part of
	// the line is skipped whole.
	w = newWire("a LOGIN {60000+}\r\n" + strings.Repeat("p", 60000) + " x\r\n" +
		"c SEARCH TEXT " + strings.Repeat("q", commandLineLimit) + " TEXT {10+}\r\nd NOOP\r\nx\r\nb NOOP\r\n")
	w.r.appendLimit = 1 << 20
	if _, ie := w.next(t); ie == nil || ie.Code != imap.ResponseCodeTooBig {
		// 60000 is over the buffered literal limit: refused and skipped
		t.Fatalf("a: %+v", ie)
	}
	if cmd, ie := w.next(t); ie != errLineTooLong || cmd.tag != "c" {
		t.Fatalf("c: %+v %+v", cmd, ie)
	}
	if cmd, ie := w.next(t); ie != nil || cmd.tag != "b" {
		t.Errorf("after the skipped literal: %+v %v", cmd, ie)
	}
	// Exactly the limit is taken.
	pad := commandLineLimit - len("a LOGIN x \r\n")
	if cmd := parseOK(t, "a LOGIN x "+strings.Repeat("y", pad)+"\r\n"); len(cmd.args.(*loginArgs).password) != pad {
		t.Error("a command of exactly the limit was refused")
	}
	// A tag or name that is too long alone cannot be answered by tag.
	for _, head := range []string{"", "a ", "a UID "} {
		w := newWire(head + strings.Repeat("N", commandLineLimit) + "\r\n")
		if _, ie := w.next(t); ie != errHeadTooLong {
			t.Errorf("%q head: %+v", head, ie)
		}
	}
}

func TestAnnouncedLiteral(t *testing.T) {
	for in, want := range map[string]struct {
		n        int64
		sync, ok bool
	}{
		"x {5}\r\n":  {5, true, true},
		"x {5+}\r\n": {5, false, true},
		"~{12}\n":    {12, true, true},
		"x {}\r\n":   {},
		"x 5}\r\n":   {},
		"x {a}\r\n":  {},
		"}\r\n":      {},
		"\r\n":       {},
	} {
		n, sync, ok := announcedLiteral([]byte(in))
		if n != want.n || sync != want.sync || ok != want.ok {
			t.Errorf("%q: %d %v %v", in, n, sync, ok)
		}
	}
}

func TestParseNeverPanicsOnTruncation(t *testing.T) {
	full := "a UID FETCH 1:* (BODY.PEEK[1.HEADER.FIELDS (A)]<0.10> FLAGS) (CHANGEDSINCE 5)\r\n" +
		"b APPEND x (\\Seen) \"01-Jan-2020 00:00:00 +0000\" {3+}\r\nabc\r\n" +
		"c SEARCH OR (NOT SEEN) UID 1:2 HEADER a {1+}\r\nb\r\n"
	for i := range len(full) {
		w := newWire(full[:i])
		for range 5 {
			cmd, err := w.r.readCommand()
			if err == nil {
				if a, ok := cmd.args.(*appendArgs); ok {
					io.Copy(io.Discard, a.first.body)
					a.next()
				}
				continue
			}
			var ie *imap.Error
			if !errors.As(err, &ie) {
				break // the end of the input
			}
		}
	}
}

// TestParseSeedSessions: the fuzz seeds taken from real clients' sessions parse without
// a single error.
func TestParseSeedSessions(t *testing.T) {
	for _, name := range []string{"mbsync-session", "imaplib-append-sync", "thunderbird-fetch", "esearch-condstore",
		"multiappend-binary", "list-extended", "search-everything"} {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseCommand", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(data), "\n", 3)
		input, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := newWire(input)
		for n := 0; ; n++ {
			cmd, err := w.r.readCommand()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s, command %d (%s): %v", name, n+1, cmd.name, err)
			}
			if cmd.name == "IDLE" {
				w.r.br.ReadString('\n') // DONE
			}
			if a, ok := cmd.args.(*appendArgs); ok {
				appendAll(t, a)
			}
		}
	}
}

// TestParseOverlongLineSkippedWithoutBuffering: the rest of an overlong line is skipped as
// it streams: skipping 16 MiB allocates nothing near that.
func TestParseOverlongLineSkippedWithoutBuffering(t *testing.T) {
	const flood = 16 << 20
	input := io.MultiReader(strings.NewReader("a LOGIN "), io.LimitReader(repeatReader('x'), flood),
		strings.NewReader("\r\nb NOOP\r\n"))
	r := newCommandReader(bufio.NewReaderSize(input, readBufferSize), nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := r.readCommand(); err != errLineTooLong {
		t.Fatalf("overlong: %v", err)
	}
	cmd, err := r.readCommand()
	runtime.ReadMemStats(&after)
	if err != nil || cmd.tag != "b" {
		t.Fatalf("after it: %+v %v", cmd, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("reading past a 16 MiB line allocated %d octets", alloc)
	}
}

type repeatReader byte

func (c repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}
