package pop3

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestDeleRset(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("one", "1\r\n"))
	e.deliver(plainMessage("two", "2\r\n"))
	c := e.login()
	_, before := c.multi("UIDL")
	c.ok("DELE 1")
	for _, cmd := range []string{"RETR 1", "TOP 1 0", "DELE 1", "LIST 1", "UIDL 1"} {
		c.err(cmd)
	}
	if _, list := c.multi("LIST"); len(list) != 1 || !strings.HasPrefix(list[0], "2 ") {
		t.Errorf("LIST after DELE 1 = %q, want only message 2", list)
	}
	if _, uidl := c.multi("UIDL"); !slices.Equal(uidl, before[1:]) {
		t.Errorf("UIDL after DELE 1 = %q, want %q", uidl, before[1:])
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT after DELE 1 = %q", got)
	}
	if got := c.ok("RSET"); !strings.Contains(got, "2 messages") {
		t.Errorf("RSET = %q", got)
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Errorf("STAT after RSET = %q", got)
	}
	c.retr(1)
	c.ok("QUIT")
	c.closed()
	if n := len(e.inbox()); n != 2 {
		t.Errorf("INBOX has %d messages after DELE, RSET, QUIT; want 2", n)
	}
}

func TestDeleQuitModes(t *testing.T) {
	for _, mode := range []string{maildrop.DeleteExpunge, maildrop.DeleteKeepFlagged, maildrop.DeleteHide} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, withOptions(func(o *Options) { o.DeleteMode = mode }))
			for _, s := range []string{"one", "two", "three"} {
				e.deliver(plainMessage(s, s+"\r\n"))
			}
			uids := []uint32{}
			for _, m := range e.inbox() {
				uids = append(uids, m.UID)
			}
			c := e.login()
			_, before := c.multi("UIDL")
			c.ok("DELE 2")
			if got := c.ok("QUIT"); !strings.Contains(got, "2 messages left") {
				t.Errorf("QUIT = %q", got)
			}
			if !c.closed() {
				t.Error("connection open after QUIT")
			}

			inbox := e.inbox()
			switch mode {
			case maildrop.DeleteExpunge:
				if len(inbox) != 2 || inbox[0].UID != uids[0] || inbox[1].UID != uids[2] {
					t.Errorf("INBOX after DELE 2 + QUIT: %+v, want UIDs %d and %d", inbox, uids[0], uids[2])
				}
			case maildrop.DeleteKeepFlagged, maildrop.DeleteHide:
				flag := map[string]string{maildrop.DeleteKeepFlagged: store.FlagDeleted, maildrop.DeleteHide: maildrop.HiddenKeyword}[mode]
				if len(inbox) != 3 {
					t.Fatalf("INBOX holds %d messages, want all 3 kept", len(inbox))
				}
				for i, m := range inbox {
					if m.HasFlag(flag) != (i == 1) {
						t.Errorf("message %d flags %v: want %s only on message 2", i+1, m.Flags, flag)
					}
				}
			}

			// The next session sees the other two, with the same UIDLs.
			c = e.login()
			if _, after := c.multi("UIDL"); len(after) != 2 ||
				strings.Fields(after[0])[1] != strings.Fields(before[0])[1] ||
				strings.Fields(after[1])[1] != strings.Fields(before[2])[1] {
				t.Errorf("UIDL in the next session = %q, before %q", after, before)
			}
		})
	}
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("one", "1\r\n"))
	e.deliver(plainMessage("two", "2\r\n"))
	c := e.login()
	c.retr(1)
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.conn.Close() // no QUIT
	// The next login waits until the old session has let go of the maildrop.
	var c2 *client
	waitFor(t, func() bool {
		c2 = e.dial()
		c2.ok("USER " + testUser)
		if strings.Contains(c2.cmd("PASS "+testPassword), "[IN-USE]") {
			c2.conn.Close()
			return false
		}
		return true
	})
	if got := c2.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Errorf("STAT after a dropped session = %q, want 2 messages", got)
	}
	for _, m := range e.inbox() {
		if len(m.Flags) != 0 {
			t.Errorf("message %d has flags %v after a dropped session, want none", m.UID, m.Flags)
		}
	}
}

func TestMarkSeenAtQuit(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("read", "1\r\n"))
	e.deliver(plainMessage("peeked", "2\r\n"))
	e.deliver(plainMessage("untouched", "3\r\n"))
	c := e.login()
	c.retr(1)
	c.ok("TOP 2 1")
	c.body()
	for _, m := range e.inbox() {
		if m.HasFlag(store.FlagSeen) {
			t.Errorf("UID %d is \\Seen before QUIT", m.UID)
		}
	}
	c.ok("QUIT")
	c.closed()
	inbox := e.inbox()
	if !inbox[0].HasFlag(store.FlagSeen) || inbox[1].HasFlag(store.FlagSeen) || inbox[2].HasFlag(store.FlagSeen) {
		t.Errorf("flags after QUIT: %v %v %v; want \\Seen on the RETR one only",
			inbox[0].Flags, inbox[1].Flags, inbox[2].Flags)
	}
}

func TestMarkSeenOff(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.MarkSeen = false }))
	e.deliver(plainMessage("read", "1\r\n"))
	c := e.login()
	c.retr(1)
	c.ok("QUIT")
	c.closed()
	if m := e.inbox()[0]; m.HasFlag(store.FlagSeen) {
		t.Errorf("\\Seen set with MarkSeen off: %v", m.Flags)
	}
}

// failingStore fails every maildrop commit, as a full disk would, without writing
// anything (that a failed commit writes nothing is the store's promise, tested there).
type failingStore struct{ *store.Store }

var errInjected = errors.New("injected: disk full")

func (f failingStore) CommitMaildrop(context.Context, int64, store.MaildropCommit) error {
	return errInjected
}

func TestQuitCommitFailureDeletesNothing(t *testing.T) {
	st := openStore(t)
	e := newEnvWith(t, st, failingStore{st})
	e.deliver(plainMessage("one", "1\r\n"))
	e.deliver(plainMessage("two", "2\r\n"))
	c := e.login()
	c.retr(2)
	c.ok("DELE 1")
	if got := c.err("QUIT"); !strings.HasPrefix(got, "-ERR [SYS/TEMP]") {
		t.Errorf("QUIT with a failing commit = %q, want -ERR [SYS/TEMP]", got)
	}
	c.closed()
	inbox := e.inbox()
	if len(inbox) != 2 || len(inbox[0].Flags) != 0 || len(inbox[1].Flags) != 0 {
		t.Errorf("INBOX after a failed commit: %+v, want both messages without flags", inbox)
	}
	// The maildrop was released.
	e.login().ok("QUIT")
}

func TestQuitInAuthorization(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.ok("USER " + testUser)
	c.ok("QUIT")
	if !c.closed() {
		t.Error("connection open after QUIT")
	}
}

// TestRsetKeepsRetrieved: RSET undoes deletion marks only (RFC 1939 §5); a message that was
// retrieved before it is still marked \Seen at QUIT.
func TestRsetKeepsRetrieved(t *testing.T) {
	e := newEnv(t)
	e.deliver(plainMessage("read then reset", "1\r\n"))
	e.deliver(plainMessage("deleted then reset", "2\r\n"))
	c := e.login()
	c.retr(1)
	c.ok("DELE 2")
	c.ok("RSET")
	c.ok("QUIT")
	c.closed()
	inbox := e.inbox()
	if len(inbox) != 2 {
		t.Fatalf("INBOX holds %d messages, want 2 (RSET undid the DELE)", len(inbox))
	}
	if !inbox[0].HasFlag(store.FlagSeen) || inbox[1].HasFlag(store.FlagSeen) {
		t.Errorf("flags after RETR 1, DELE 2, RSET, QUIT: %v %v; want \\Seen on message 1 only",
			inbox[0].Flags, inbox[1].Flags)
	}
}
