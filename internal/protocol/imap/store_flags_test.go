package imap

import (
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestStoreFlags(t *testing.T) {
	e := newEnv(t)
	first := e.deliver("INBOX", plainMessage("Flag me", "x\r\n"))
	e.deliver("INBOX", plainMessage("Read me", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")

	// System flags are answered in their canonical case, whatever the client wrote.
	got := c.ok(`UID STORE %d +FLAGS (\flagged \ANSWERED $Work Project7)`, first.UID)
	if len(grep(got, `^\* 1 FETCH \(UID 1 FLAGS \(\\Recent \\Answered \\Flagged \$Work Project7\)\)$`)) != 1 {
		t.Errorf("STORE +FLAGS answered %q", got)
	}
	if len(grep(got, `^\* FLAGS \(.*\$Work Project7\)$`)) != 1 {
		t.Errorf("STORE of new keywords sent no FLAGS: %q", got)
	}
	if got := c.ok(`STORE 2 +FLAGS.SILENT (\Seen \Draft)`); len(got) != 0 {
		t.Errorf(".SILENT answered %q", got)
	}
	c.ok(`STORE 2 -FLAGS.SILENT (\Draft)`)
	got = c.ok(`STORE 1:2 FLAGS ($Work)`)
	if len(grep(got, `^\* [12] FETCH \(UID [12] FLAGS \(\\Recent \$Work\)\)$`)) != 2 {
		t.Errorf("STORE FLAGS answered %q", got)
	}
	if got := c.ok("NOOP"); len(got) != 0 {
		t.Errorf("NOOP after own STOREs repeated them: %q", got)
	}
	msgs, err := e.st.Messages(t.Context(), first.MailboxID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(msgs[0].Flags, []string{"$Work"}) || !slices.Equal(msgs[1].Flags, []string{"$Work"}) {
		t.Errorf("stored flags %v %v", msgs[0].Flags, msgs[1].Flags)
	}
	// \Recent cannot be stored; it is ignored.
	c.ok(`STORE 1 +FLAGS.SILENT (\Recent)`)
}

// With .SILENT the client is not told its own change, but is told what someone else
// changed at the same time.
func TestStoreSilentSeesOthers(t *testing.T) {
	e := newEnv(t)
	d := e.deliver("INBOX", plainMessage("Shared", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	if _, err := e.st.SetFlags(t.Context(), d.MailboxID, []uint32{d.UID}, store.FlagsAdd, []string{store.FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	got := c.ok(`STORE 1 +FLAGS.SILENT (\Seen)`)
	if len(got) != 1 || got[0] != `* 1 FETCH (UID 1 FLAGS (\Recent \Flagged \Seen))` {
		t.Errorf("STORE .SILENT after a concurrent change: %q", got)
	}
}

// RFC 3501 §7.2.6: the session whose STORE brings a new keyword is told FLAGS before the
// FETCH that shows it.
func TestStoreNewKeywordFlagsFirst(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	got := c.ok(`STORE 1 +FLAGS ($keyword1)`)
	if rest, ok := announces(got, "$keyword1"); !ok || len(rest) != 1 || rest[0] != `* 1 FETCH (UID 1 FLAGS (\Recent $keyword1))` {
		t.Errorf("STORE of a new keyword answered %q, want FLAGS, PERMANENTFLAGS, then FETCH", got)
	}
	if got := c.ok("NOOP"); len(got) != 0 {
		t.Errorf("NOOP after the STORE repeated it: %q", got)
	}
	// A keyword the client knows needs no FLAGS.
	got = c.ok(`STORE 1 FLAGS ($keyword1 \Seen)`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "* 1 FETCH") {
		t.Errorf("STORE of a known keyword answered %q", got)
	}
}

// RFC 3501 §9: flag-keyword is an atom, and NIL is one: it is stored as a keyword, as
// Dovecot does (imaptest's nil script).
func TestStoreNILKeyword(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	c.ok(`STORE 1 +FLAGS.SILENT NIL`)
	if got := grep(c.ok("FETCH 1 FLAGS"), "FETCH"); len(got) != 1 || got[0] != `* 1 FETCH (FLAGS (\Recent NIL))` {
		t.Errorf("FETCH FLAGS after STORE NIL: %q", got)
	}
}

// A keyword another session stores reaches a FETCH FLAGS only after FLAGS has announced it
// (RFC 3501 §7.2.6; imaptest's stress found FETCH showing it first).
func TestFetchOthersNewKeywordAfterFlags(t *testing.T) {
	e := newEnv(t)
	d := e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	if _, err := e.st.SetFlags(t.Context(), d.MailboxID, []uint32{d.UID}, store.FlagsAdd, []string{"$Fresh"}); err != nil {
		t.Fatal(err)
	}
	got := c.ok("FETCH 1 FLAGS")
	announced := false
	for _, l := range got {
		if strings.HasPrefix(l, "* FLAGS (") && strings.Contains(l, "$Fresh") {
			announced = true
		}
		if strings.Contains(l, "FETCH") && strings.Contains(l, "$Fresh") && !announced {
			t.Errorf("FETCH showed $Fresh before FLAGS: %q", got)
		}
	}
	if !announced || !strings.Contains(got[len(got)-1], `FLAGS (\Recent $Fresh)`) {
		t.Errorf("FETCH FLAGS after another's new keyword: %q, want FLAGS and then the new flags", got)
	}
}

// expungeElsewhere has a second session expunge message seq of INBOX.
func expungeElsewhere(e *testEnv, seq int) {
	b := e.rawLogin()
	b.ok("SELECT INBOX")
	b.ok(`STORE %d +FLAGS.SILENT (\Deleted)`, seq)
	b.ok("EXPUNGE")
}

// A STORE on a message another session expunged, whose EXPUNGE this session may not send
// yet (RFC 3501 §7.4.1), is answered OK with the FETCH FLAGS the STORE would have given it
// (RFC 2180 §4.2), the EXPUNGE following at the next command that allows it. imaptest's
// stress with own_flags checks that every message a STORE names is answered. Both orders:
// the session has already read the expunge (after FETCH, which sends no EXPUNGE), or it
// learns of it during the STORE.
func TestStoreOnExpungedElsewhere(t *testing.T) {
	for _, known := range []bool{true, false} {
		name := "unread"
		if known {
			name = "read"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.deliver("INBOX", plainMessage("One", "x\r\n"))
			e.deliver("INBOX", plainMessage("Two", "x\r\n"), store.FlagSeen)
			a := e.rawLogin()
			a.ok("SELECT INBOX")
			expungeElsewhere(e, 2)
			if known {
				if got := a.ok("FETCH 1 (FLAGS)"); len(grep(got, "EXPUNGE")) != 0 {
					t.Fatalf("FETCH sent EXPUNGE: %q", got)
				}
			}
			got := a.ok(`STORE 1:2 +FLAGS (\Flagged)`)
			if len(grep(got, `^\* 1 FETCH \(UID 1 FLAGS \(.*\\Flagged.*\)\)$`)) != 1 ||
				len(grep(got, `^\* 2 FETCH \(UID 2 FLAGS \(.*\\Seen \\Flagged\)\)$`)) != 1 {
				t.Errorf("STORE on messages 1 and the expunged 2 answered %q, want a FETCH FLAGS for each", got)
			}
			if len(grep(got, "EXPUNGE")) != 0 {
				t.Errorf("STORE sent EXPUNGE: %q", got)
			}
			if got := a.ok("NOOP"); len(got) != 1 || got[0] != "* 2 EXPUNGE" {
				t.Errorf("NOOP after the STORE answered %q, want the EXPUNGE of 2", got)
			}
		})
	}
}

// A STORE whose only message was expunged by another session still makes its keyword one
// of the mailbox's: FLAGS announces it before the FETCH that shows it (RFC 3501 §7.2.6).
// imaptest's stress with own_flags reported "STORE didn't create keyword" when it did not.
func TestStoreKeywordOnExpungedElsewhere(t *testing.T) {
	for _, known := range []bool{true, false} {
		name := "unread"
		if known {
			name = "read"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.deliver("INBOX", plainMessage("One", "x\r\n"))
			e.deliver("INBOX", plainMessage("Two", "x\r\n"))
			a := e.rawLogin()
			a.ok("SELECT INBOX")
			expungeElsewhere(e, 2)
			if known {
				a.ok("FETCH 1 (FLAGS)")
			}
			got := a.ok(`STORE 2 +FLAGS ($Label4)`)
			if rest, ok := announces(got, "$Label4"); !ok || len(rest) != 1 ||
				len(grep(rest, `^\* 2 FETCH \(UID 2 FLAGS \(.*\$Label4\)\)$`)) != 1 {
				t.Errorf("STORE of a new keyword on an expunged message answered %q, want FLAGS, PERMANENTFLAGS, then FETCH", got)
			}
			if got := a.ok("NOOP"); len(got) != 1 || got[0] != "* 2 EXPUNGE" {
				t.Errorf("NOOP after the STORE answered %q, want the EXPUNGE of 2", got)
			}
		})
	}
}

// A keyword another session stored a moment before, on the message this STORE changes,
// reaches the client in FLAGS before the FETCH that shows it (RFC 3501 §7.2.6).
func TestStoreAfterOthersNewKeyword(t *testing.T) {
	e := newEnv(t)
	e.deliver("INBOX", plainMessage("One", "x\r\n"))
	a := e.rawLogin()
	a.ok("SELECT INBOX")
	b := e.rawLogin()
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT ($Label2)`)
	got := a.ok(`STORE 1 +FLAGS (\Seen)`)
	if rest, ok := announces(got, "$Label2"); !ok || len(rest) != 1 ||
		len(grep(rest, `^\* 1 FETCH \(UID 1 FLAGS \(.*\$Label2.*\)\)$`)) != 1 {
		t.Errorf("STORE after another's new keyword answered %q, want FLAGS, PERMANENTFLAGS, then FETCH", got)
	}
}

// announces reports whether got begins with FLAGS and PERMANENTFLAGS (with \*) both
// listing keyword, and returns the responses after them.
func announces(got []string, keyword string) ([]string, bool) {
	if len(got) < 2 || !strings.HasPrefix(got[0], "* FLAGS (") || !strings.Contains(got[0], " "+keyword+")") ||
		!strings.HasPrefix(got[1], "* OK [PERMANENTFLAGS (") || !strings.Contains(got[1], " "+keyword+` \*)]`) {
		return got, false
	}
	return got[2:], true
}

// A session that EXAMINEd the mailbox is told a new keyword in FLAGS without
// PERMANENTFLAGS, which stays empty for it (RFC 3501 §6.3.2).
func TestExamineNewKeywordNoPermanentFlags(t *testing.T) {
	e := newEnv(t)
	d := e.deliver("INBOX", plainMessage("One", "x\r\n"))
	c := e.rawLogin()
	c.ok("EXAMINE INBOX")
	if _, err := e.st.SetFlags(t.Context(), d.MailboxID, []uint32{d.UID}, store.FlagsAdd, []string{"$Seen2"}); err != nil {
		t.Fatal(err)
	}
	got := c.ok("NOOP")
	if len(grep(got, `^\* FLAGS \(.*\$Seen2\)$`)) != 1 || len(grep(got, "PERMANENTFLAGS")) != 0 {
		t.Errorf("NOOP in EXAMINE after another's new keyword answered %q, want FLAGS and no PERMANENTFLAGS", got)
	}
}
