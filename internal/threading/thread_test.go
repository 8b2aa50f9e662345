package threading

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// bySeq formats threads with sequence numbers, as THREAD prints them.
func bySeq(msgs []Message, threads []*Thread) string {
	return Format(threads, func(i int) uint32 { return msgs[i].Seq })
}

// msg is a message for the threading tests: sequence number seq, sent seq minutes after
// base unless the test changes it, Message-ID <id>.
func msg(seq uint32, id string, refs ...string) Message {
	m := Message{Seq: seq, UID: seq + 1000, InternalDate: at(time.Duration(seq) * time.Minute)}
	if id != "" {
		m.MessageID = "<" + id + ">"
	}
	for _, r := range refs {
		m.References = append(m.References, "<"+r+">")
	}
	return m
}

func TestFormat(t *testing.T) {
	leaf := func(i int) *Thread { return &Thread{Index: i} }
	node := func(i int, children ...*Thread) *Thread { return &Thread{Index: i, Children: children} }
	id := func(i int) uint32 { return uint32(i) }
	tests := []struct {
		threads []*Thread
		want    string
	}{
		{nil, ""},
		{[]*Thread{leaf(1)}, "(1)"},
		// RFC 5256 §4's example of the formal syntax.
		{[]*Thread{leaf(2), node(3, node(6, node(4, leaf(23)), node(44, node(7, leaf(96)))))},
			"(2)(3 6 (4 23)(44 7 96))"},
		// "A thread-list of ((3)(5)) indicates that the 3 and 5 are siblings of a dummy
		// parent."
		{[]*Thread{node(-1, leaf(3), leaf(5))}, "((3)(5))"},
		{[]*Thread{node(-1, node(3, leaf(4)), leaf(5)), leaf(6)}, "((3 4)(5))(6)"},
		// A dummy with one child prints as the child; one without prints nothing.
		{[]*Thread{node(-1, node(3, leaf(4))), node(-1)}, "(3 4)"},
		{[]*Thread{node(1, leaf(2), leaf(3), node(4, leaf(5), leaf(6)))}, "(1 (2)(3)(4 (5)(6)))"},
	}
	for _, tt := range tests {
		if got := Format(tt.threads, id); got != tt.want {
			t.Errorf("Format = %q, want %q", got, tt.want)
		}
		if got := string(AppendFormat([]byte("* THREAD "), tt.threads, id)); got != "* THREAD "+tt.want {
			t.Errorf("AppendFormat = %q", got)
		}
	}
}

func TestReferencesRFCExample(t *testing.T) {
	// Messages that REFERENCES threads into RFC 5256 §4's example
	// (2)(3 6 (4 23)(44 7 96)); 7's References is truncated to its parent.
	msgs := []Message{
		msg(2, "2"),
		msg(3, "3"),
		msg(4, "4", "3", "6"),
		msg(6, "6", "3"),
		msg(7, "7", "44"),
		msg(23, "23", "3", "6", "4"),
		msg(44, "44", "3", "6"),
		msg(96, "96", "3", "6", "44", "7"),
	}
	want := "(2)(3 6 (4 23)(44 7 96))"
	if got := bySeq(msgs, References(msgs)); got != want {
		t.Errorf("References = %s, want %s", got, want)
	}
	// Given in another order, the messages thread the same.
	shuffled := slices.Clone(msgs)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if got := bySeq(shuffled, References(shuffled)); got != want {
		t.Errorf("References of shuffled input = %s, want %s", got, want)
	}
}

func TestReferences(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		want string
	}{
		{"no messages", nil, ""},
		{"unrelated", []Message{msg(1, "a"), msg(2, "b")}, "(1)(2)"},
		{"no Message-ID", []Message{msg(1, ""), msg(2, "", "x")}, "(1)(2)"},
		{"reply", []Message{msg(1, "a"), msg(2, "b", "a")}, "(1 2)"},
		{"reply before its parent in the mailbox", []Message{msg(1, "b", "a"), msg(2, "a")}, "(2 1)"},
		{"In-Reply-To without References", []Message{
			msg(1, "a"),
			{Seq: 2, MessageID: "<b>", InReplyTo: []string{"<a>", "<z>"}, InternalDate: at(2 * time.Minute)},
		}, "(1 2)"},
		{"References wins over In-Reply-To", []Message{
			msg(1, "a"), msg(2, "z"),
			{Seq: 3, MessageID: "<b>", InReplyTo: []string{"<z>"}, References: []string{"<a>"}, InternalDate: at(3 * time.Minute)},
		}, "(1 3)(2)"},
		{"In-Reply-To when References holds no valid id", []Message{
			msg(1, "a"),
			{Seq: 2, MessageID: "<b>", InReplyTo: []string{"<a>"}, References: []string{"<>", " "}, InternalDate: at(2 * time.Minute)},
		}, "(1 2)"},
		{"quoting normalised", []Message{
			{Seq: 1, MessageID: `<"01KF8JCEOCBS0045PS"@xxx.yyy.com>`, InternalDate: at(1)},
			{Seq: 2, MessageID: "<x@y>", References: []string{"<01KF8JCEOCBS0045PS@xxx.yyy.com>"}, InternalDate: at(2)},
		}, "(1 2)"},
		{"Message-IDs are case-sensitive", []Message{msg(1, "A@b"), msg(2, "x", "a@b")}, "(1)(2)"},
		// (1)(A) "If two or more messages have the same Message ID, then only use that
		// Message ID in the first (lowest sequence number) message".
		{"duplicate Message-ID", []Message{msg(1, "a"), msg(2, "a"), msg(3, "c", "a")}, "(1 3)(2)"},
		// "If a message already has a parent, don't change the existing link."
		{"existing link kept", []Message{
			msg(1, "a"), msg(2, "b"), msg(3, "c", "a"), msg(4, "d", "b", "c"),
		}, "(1 3 4)(2)"},
		// (1)(B): the last reference becomes the parent even if the message had one
		// from another message's References.
		{"parent replaced by the message's own references", []Message{
			msg(1, "a"), msg(2, "b"), msg(3, "d", "a", "c"), msg(4, "c", "b"),
		}, "(1)(2 4 3)"},
		// "Note that if this message has no references, it will now have no parent":
		// c loses the parent a that d's References gave it, and keeps its child d.
		{"no references: no parent", []Message{msg(1, "a"), msg(2, "d", "a", "c"), msg(3, "c")}, "(1)(3 2)"},
		// Loops: imaptest's "thread" script. c's References would make b its parent,
		// but b is already c's child.
		{"loop refused", []Message{
			{Seq: 1, MessageID: "<a@b>", InternalDate: at(3 * time.Hour)},
			{Seq: 2, MessageID: "<b@b>", References: []string{"<a@b>", "<c@b>"}, InternalDate: at(1 * time.Hour)},
			{Seq: 3, MessageID: "<c@b>", References: []string{"<b@b>"}, InternalDate: at(2 * time.Hour)},
		}, "(3 2)(1)"},
		// a->b, then b->a is refused; x goes under its last reference a; b, which has
		// no references of its own, then leaves a.
		{"loop in one References", []Message{msg(1, "x", "a", "b", "a"), msg(2, "a"), msg(3, "b")}, "(2 1)(3)"},
		{"loop in one References, dummies", []Message{msg(1, "x", "a", "b", "a")}, "(1)"},
		{"reference to itself", []Message{msg(1, "a"), msg(2, "b", "a", "b")}, "(1 2)"},
		// (3) pruning.
		{"dummy parent of one message", []Message{msg(1, "b", "a")}, "(1)"},
		{"dummy parent of two at the top", []Message{msg(1, "b", "a"), msg(2, "c", "a")}, "((1)(2))"},
		{"dummy inside a thread", []Message{msg(1, "a"), msg(2, "c", "a", "b"), msg(3, "d", "a", "b")}, "(1 (2)(3))"},
		{"chain of dummies", []Message{msg(1, "z", "x", "y")}, "(1)"},
		{"dummy left childless by (1)(B)", []Message{
			{Seq: 1, MessageID: "<b@b>", References: []string{"<a@b>", "<c@b>"}, InternalDate: at(1 * time.Hour)},
			{Seq: 2, MessageID: "<c@b>", References: []string{"<b@b>"}, InternalDate: at(2 * time.Hour)},
		}, "(2 1)"},
		// (6) siblings by sent date, the Date header first, INTERNALDATE without it.
		{"children by sent date", []Message{
			msg(1, "a"),
			{Seq: 2, MessageID: "<b>", References: []string{"<a>"}, Date: at(time.Hour), InternalDate: at(0)},
			{Seq: 3, MessageID: "<c>", References: []string{"<a>"}, InternalDate: at(30 * time.Minute)},
			{Seq: 4, MessageID: "<d>", References: []string{"<a>"}, Date: at(30 * time.Minute), InternalDate: at(0)},
		}, "(1 (3)(4)(2))"},
		// (4): a dummy sorts by its first child.
		{"dummy at the top sorts by its first child", []Message{
			{Seq: 1, MessageID: "<a>", InternalDate: at(2 * time.Hour)},
			{Seq: 2, MessageID: "<b>", References: []string{"<x>"}, InternalDate: at(3 * time.Hour)},
			{Seq: 3, MessageID: "<c>", References: []string{"<x>"}, InternalDate: at(1 * time.Hour)},
		}, "((3)(2))(1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bySeq(tt.msgs, References(tt.msgs)); got != tt.want {
				t.Errorf("References = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReferencesSubjects(t *testing.T) {
	s := func(seq uint32, id, subject string, refs ...string) Message {
		m := msg(seq, id, refs...)
		m.Subject = subject
		return m
	}
	tests := []struct {
		name string
		msgs []Message
		want string
	}{
		// (5)(C) "If the current message is a reply or forward and the message in the
		// subject table is not, make the current message a child".
		{"reply joins the original", []Message{s(1, "a", "foo"), s(2, "b", "Re: foo")}, "(1 2)"},
		{"reply first in time joins the later original", []Message{
			s(1, "a", "Re: foo"), s(2, "b", "foo"),
		}, "(2 1)"},
		{"forward joins", []Message{s(1, "a", "Foo"), s(2, "b", "[list] Fwd: foo (fwd)")}, "(1 2)"},
		// "Otherwise, create a new dummy message and make both [...] children of the
		// dummy."
		{"two originals: a dummy", []Message{s(1, "a", "foo"), s(2, "b", "foo")}, "((1)(2))"},
		{"two replies: a dummy", []Message{s(1, "a", "Re: foo"), s(2, "b", "RE: Foo")}, "((1)(2))"},
		{"three originals: one dummy", []Message{s(1, "a", "foo"), s(2, "b", "foo"), s(3, "c", "foo")}, "((1)(2)(3))"},
		{"originals and a reply", []Message{
			s(1, "a", "foo"), s(2, "b", "foo"), s(3, "c", "re: foo"),
		}, "((1)(2)(3))"},
		// A surviving dummy from (3) is the one in the table: the others join it.
		{"dummy takes the thread", []Message{
			s(1, "a", "foo"),
			s(2, "b", "Re: foo", "x"), s(3, "c", "Re: foo", "x"),
		}, "((1)(2)(3))"},
		{"two dummies merge", []Message{
			s(1, "b", "foo", "x"), s(2, "c", "foo", "x"),
			s(3, "d", "re: foo", "y"), s(4, "e", "foo", "y"),
		}, "((1)(2)(3)(4))"},
		// Only the top of a thread is grouped; replies inside threads stay.
		{"only top-level threads", []Message{
			s(1, "a", "foo"), s(2, "b", "other"), s(3, "c", "Re: foo", "b"),
		}, "(1)(2 3)"},
		// (ii) "If the thread subject is empty, skip this message."
		{"empty subjects stay apart", []Message{s(1, "a", ""), s(2, "b", "Re:"), s(3, "c", "[fwd: ]")}, "(1)(2)(3)"},
		{"case-insensitive", []Message{s(1, "a", "Hello World"), s(2, "b", "re: HELLO WORLD")}, "(1 2)"},
		{"different subjects", []Message{s(1, "a", "foo"), s(2, "b", "Re: bar")}, "(1)(2)"},
		// imaptest's thread3 and thread4.
		{"duplicate Message-ID, then subject", []Message{s(1, "a@b", "foo"), s(2, "a@b", "Re: foo")}, "(1 2)"},
		{"promoted child, then subject", []Message{s(1, "a@b", "foo"), s(2, "b@b", "Re: foo", "c@b")}, "(1 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bySeq(tt.msgs, References(tt.msgs)); got != tt.want {
				t.Errorf("References = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReferencesEveryMessageOnce(t *testing.T) {
	// Whatever the links, every message appears exactly once and no dummy is left
	// with fewer than two children or below the top.
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 50; round++ {
		n := 1 + r.IntN(60)
		msgs := make([]Message, n)
		for i := range msgs {
			msgs[i] = msg(uint32(i+1), fmt.Sprint(r.IntN(n+5)))
			for k := r.IntN(4); k > 0; k-- {
				msgs[i].References = append(msgs[i].References, fmt.Sprintf("<%d>", r.IntN(n+5)))
			}
			msgs[i].Subject = []string{"", "a", "Re: a", "b", "Fwd: b"}[r.IntN(5)]
			msgs[i].InternalDate = at(time.Duration(r.IntN(10)) * time.Minute)
		}
		seen := make([]int, n)
		var walk func(t *Thread, top bool)
		walk = func(th *Thread, top bool) {
			if th.Dummy() {
				if !top || len(th.Children) < 2 {
					t.Fatalf("round %d: dummy (top %v) with %d children", round, top, len(th.Children))
				}
			} else {
				seen[th.Index]++
			}
			for _, c := range th.Children {
				walk(c, false)
			}
		}
		for _, th := range References(msgs) {
			walk(th, true)
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("round %d: message %d appears %d times", round, i, c)
			}
		}
	}
}

func TestOrderedSubject(t *testing.T) {
	s := func(seq uint32, subject string, d time.Duration) Message {
		return Message{Seq: seq, Subject: subject, InternalDate: at(d)}
	}
	tests := []struct {
		name string
		msgs []Message
		want string
	}{
		{"none", nil, ""},
		{"one", []Message{s(1, "a", 0)}, "(1)"},
		// The first by sent date is the parent of all the others, which are siblings.
		{"thread", []Message{s(1, "Re: a", 2), s(2, "a", 3), s(3, "A", 1)}, "(3 (1)(2))"},
		{"two", []Message{s(1, "Re: a", 2), s(2, "a", 3)}, "(1 2)"},
		// Threads by the sent date of their first message, then sequence number.
		{"threads by first date", []Message{
			s(1, "b", 5), s(2, "a", 9), s(3, "re: b", 1), s(4, "c", 5), s(5, "fwd: a", 9),
		}, "(3 1)(4)(2 5)"},
		{"empty subjects are one thread", []Message{s(1, "", 1), s(2, "Re:", 0), s(3, "x", 2)}, "(2 1)(3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bySeq(tt.msgs, OrderedSubject(tt.msgs)); got != tt.want {
				t.Errorf("OrderedSubject = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseMessageIDs(t *testing.T) {
	got := mailmsg.ParseMessageIDs("<a@b>\r\n <c@d> (comment) junk <\"q x\"@e> <unterminated")
	want := []string{"<a@b>", "<c@d>", `<"q x"@e>`}
	if !slices.Equal(got, want) {
		t.Errorf("ParseMessageIDs = %q, want %q", got, want)
	}
	for in, want := range map[string]string{
		"<a@b>":      "a@b",
		" <a@b> ":    "a@b",
		"a@b":        "a@b",
		`<"a b"@c>`:  "a b@c",
		`<"a\"b"@c>`: `a"b@c`,
		"<>":         "",
		"":           "",
		"< x@y >":    "x@y",
	} {
		if got := normalizeMessageID(in); got != want {
			t.Errorf("normalizeMessageID(%q) = %q, want %q", in, got, want)
		}
	}
}
