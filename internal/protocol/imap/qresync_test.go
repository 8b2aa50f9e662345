package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/protocol/pop3"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// qresyncState is what a QRESYNC client remembers of a mailbox: its UIDVALIDITY and
// HIGHESTMODSEQ, from SELECT.
func qresyncState(t *testing.T, sel []string) (uidValidity string, highest int64) {
	t.Helper()
	m := regexp.MustCompile(`^\* OK \[UIDVALIDITY (\d+)\]`)
	for _, l := range sel {
		if x := m.FindStringSubmatch(l); x != nil {
			uidValidity = x[1]
		}
	}
	return uidValidity, modSeqIn(t, sel, `^\* OK \[HIGHESTMODSEQ `)
}

func TestQresyncSelect(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.deliver("INBOX", plainMessage(fmt.Sprint(i), "x\r\n"))
	}
	c := e.rawLogin()
	// RFC 7162 §3.2.5: the QRESYNC parameter before ENABLE QRESYNC is BAD.
	if _, status := c.cmd("SELECT INBOX (QRESYNC (1 1))"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("QRESYNC without ENABLE: %q", status)
	}
	c.ok("ENABLE QRESYNC")
	uv, highest := qresyncState(t, c.ok("SELECT INBOX"))
	c.ok("UNSELECT")

	// Meanwhile another session flags UID 2 and expunges UIDs 3 and 4.
	other := e.rawLogin()
	other.ok("SELECT INBOX")
	other.ok(`UID STORE 2 +FLAGS.SILENT (\Flagged)`)
	other.ok(`UID STORE 3:4 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")

	got := c.ok("SELECT INBOX (QRESYNC (%s %d))", uv, highest)
	vanished := grep(got, `^\* VANISHED`)
	if len(vanished) != 1 || vanished[0] != "* VANISHED (EARLIER) 3:4" {
		t.Errorf("VANISHED after QRESYNC SELECT: %q", got)
	}
	fetches := grep(got, `FETCH`)
	if len(fetches) != 1 || !regexp.MustCompile(`^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$`).MatchString(fetches[0]) {
		t.Errorf("FETCH after QRESYNC SELECT: %q, want UID 2's new flags with MODSEQ", fetches)
	}
	if len(grep(got, `^\* 3 EXISTS$`)) != 1 {
		t.Errorf("EXISTS after QRESYNC SELECT: %q", got)
	}
	// known-uids narrows both.
	got = c.ok("EXAMINE INBOX (QRESYNC (%s %d 1,4:5))", uv, highest)
	if v, f := grep(got, `^\* VANISHED`), grep(got, `FETCH`); len(v) != 1 || v[0] != "* VANISHED (EARLIER) 4" || len(f) != 0 {
		t.Errorf("QRESYNC with known-uids 1,4:5: VANISHED %q, FETCH %q", v, f)
	}
	// Another UIDVALIDITY: the client's cache is void, nothing is resynchronised.
	otherUV, _ := strconv.ParseUint(uv, 10, 32)
	got = c.ok("SELECT INBOX (QRESYNC (%d %d))", otherUV^1, highest)
	if len(grep(got, `VANISHED|FETCH`)) != 0 {
		t.Errorf("QRESYNC with another UIDVALIDITY: %q", got)
	}
}

// RFC 7162 §3.2.10: with QRESYNC enabled, expunges are announced with VANISHED, never
// EXPUNGE: the session's own EXPUNGE, MOVE, and others' expunges in the poll.
func TestQresyncVanishedReplacesExpunge(t *testing.T) {
	e := newEnv(t)
	for i := range 6 {
		e.deliver("INBOX", plainMessage(fmt.Sprint(i), "x\r\n"))
	}
	c, other := e.rawLogin(), e.rawLogin()
	c.ok("ENABLE QRESYNC")
	c.ok("SELECT INBOX")
	other.ok("SELECT INBOX")
	c.ok(`STORE 1,3 +FLAGS.SILENT (\Deleted)`)
	if got := c.ok("EXPUNGE"); len(got) != 1 || got[0] != "* VANISHED 1,3" {
		t.Errorf("EXPUNGE: %q", got)
	}
	if got := c.ok("MOVE 1 Trash"); len(grep(got, "EXPUNGE")) != 0 || len(grep(got, `^\* VANISHED 2$`)) != 1 {
		t.Errorf("MOVE: %q", got)
	}
	other.ok("NOOP") // takes in the expunges above
	other.ok(`UID STORE 5:6 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	if got := c.ok("NOOP"); len(got) != 1 || got[0] != "* VANISHED 5:6" {
		t.Errorf("another session's EXPUNGE: %q", got)
	}
	// UID FETCH ... (CHANGEDSINCE m VANISHED), RFC 7162 §3.2.6: what vanished since m among
	// the UIDs asked about, before the FETCHes.
	got := c.ok("UID FETCH 1:5 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
	if len(got) == 0 || got[0] != "* VANISHED (EARLIER) 1:3,5" {
		t.Errorf("UID FETCH VANISHED: %q", got)
	}
	if f := grep(got, `FETCH`); len(f) != 1 || !strings.HasPrefix(f[0], "* 1 FETCH (UID 4 FLAGS") {
		t.Errorf("UID FETCH VANISHED, its FETCH: %q", f)
	}
	// "$" is the saved result, not every UID.
	c.ok("UID SEARCH RETURN (SAVE) UID 4")
	if got := c.ok("UID FETCH $ (FLAGS) (CHANGEDSINCE 1 VANISHED)"); len(grep(got, "VANISHED")) != 0 || len(got) != 1 {
		t.Errorf("UID FETCH $ ... VANISHED: %q", got)
	}
	if _, status := other.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("VANISHED without QRESYNC: %q", status)
	}
}

// A message expunged after SELECT read the mailbox but before its QRESYNC answer is not
// named in VANISHED (EARLIER): the view holds it until the poll announces it.
func TestNotInView(t *testing.T) {
	v := &selected{uids: []uint32{2, 5, 6, 9}}
	got := v.notInView([]store.UIDRange{{Start: 1, Stop: 6}, {Start: 8, Stop: 12}})
	if s := got.String(); s != "1,3:4,8,10:12" {
		t.Errorf("notInView: %s", s)
	}
	if got := v.notInView([]store.UIDRange{{Start: 5, Stop: 6}}); len(got) != 0 {
		t.Errorf("notInView of held UIDs: %s", got)
	}
}

// A QRESYNC client sees what POP3 does: RETR and QUIT set \Seen with a new MODSEQ, DELE and
// QUIT make the message VANISHED, both in a later SELECT ... (QRESYNC ...) and in IDLE.
func TestQresyncSeesPOP3(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.deliver("INBOX", plainMessage(fmt.Sprintf("Message %d", i), "x\r\n"))
	}
	ps := pop3.NewServer(e.st, pop3.Options{Auth: &auth.Authenticator{Store: e.st}, MarkSeen: true})
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ps.Serve(pln)
	defer ps.Shutdown(context.Background())
	pop3Session := func(cmds ...string) {
		conn, err := net.Dial("tcp", pln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p := &pop3Client{t: t, c: conn, br: bufio.NewReader(conn)}
		if l, _ := p.br.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 greeting %q", l)
		}
		p.cmd("USER " + testUser)
		p.cmd("PASS " + testPassword)
		for _, c := range cmds {
			if strings.HasPrefix(c, "RETR") {
				p.multiline(c)
			} else {
				p.cmd(c)
			}
		}
		p.cmd("QUIT")
	}

	c := e.rawLogin()
	c.ok("ENABLE QRESYNC")
	uv, highest := qresyncState(t, c.ok("SELECT INBOX"))
	c.ok("LOGOUT")

	// Offline: POP3 reads message 1 and deletes message 2.
	pop3Session("RETR 1", "DELE 2")
	c = e.rawLogin()
	c.ok("ENABLE QRESYNC")
	got := c.ok("SELECT INBOX (QRESYNC (%s %d))", uv, highest)
	if v := grep(got, `^\* VANISHED`); len(v) != 1 || v[0] != "* VANISHED (EARLIER) 2" {
		t.Errorf("QRESYNC SELECT after POP3 DELE+QUIT: %q", got)
	}
	seen := grep(got, `^\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$`)
	if len(seen) != 1 || modSeqIn(t, seen, ".") <= highest {
		t.Errorf("QRESYNC SELECT after POP3 RETR+QUIT: %q, want UID 1 \\Seen with a MODSEQ above %d", got, highest)
	}
	_, highest = qresyncState(t, got)

	// Online, in IDLE: POP3 reads message 3 (now 2) and deletes message 4 (now 3).
	c.send("I1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	pop3Session("RETR 2", "DELE 3")
	c.waitFor(`^\* VANISHED 4$`)
	m := c.waitFor(`^\* 2 FETCH \(UID 3 FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)$`)
	c.send("DONE")
	c.waitFor(`^I1 OK`)
	if n, _ := strconv.ParseInt(m[1], 10, 64); n <= highest {
		t.Errorf("IDLE: MODSEQ %s of POP3's \\Seen not above %d", m[1], highest)
	}
	if got := c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", highest); len(got) < 2 || got[0] != "* VANISHED (EARLIER) 4" {
		t.Errorf("UID FETCH CHANGEDSINCE VANISHED after IDLE: %q", got)
	}
}
