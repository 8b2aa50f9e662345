package imap

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// sortEnv: four messages in INBOX, delivered in this order (so UIDs 1-4, sequence
// numbers 1-4). Message 4 replies to 1 through References alone (no In-Reply-To), and
// message 2's To is a group.
func sortEnv(t *testing.T) (*testEnv, *rawClient) {
	e := newEnv(t)
	for _, raw := range []string{
		"From: Zed <zed@example.org>\r\nTo: bob@example.org\r\nSubject: Lunch\r\n" +
			"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\nMessage-ID: <a@example.org>\r\n\r\nbody\r\n",
		"From: amy@example.org\r\nTo: Friends: carl@example.org;\r\nSubject: Budget\r\n" +
			"Date: Mon, 1 Jun 2026 08:00:00 +0000\r\nMessage-ID: <b@example.org>\r\n\r\nlonger body text\r\n",
		"From: Bea <bea@example.org>\r\nTo: Al <zz@example.org>\r\nSubject: Budget\r\n" +
			"Date: Mon, 1 Jun 2026 09:00:00 -0200\r\nMessage-ID: <c@example.org>\r\n\r\nb\r\n",
		"From: Carl <carl@example.org>\r\nTo: bob@example.org\r\nSubject: Re: Lunch\r\n" +
			"Date: Mon, 1 Jun 2026 12:00:00 +0000\r\nMessage-ID: <d@example.org>\r\n" +
			"References: <x@example.org>\r\n <a@example.org>\r\n\r\nok\r\n",
	} {
		e.deliver("INBOX", raw)
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	return e, c
}

func TestSortCriteria(t *testing.T) {
	_, c := sortEnv(t)
	for _, tt := range []struct{ cmd, want string }{
		// Sent dates as instants: 2 (08:00Z), 1 (10:00Z), 3 (11:00Z), 4 (12:00Z).
		{"SORT (DATE) UTF-8 ALL", "* SORT 2 1 3 4"},
		{"SORT (REVERSE DATE) US-ASCII ALL", "* SORT 4 3 1 2"},
		{"SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4"},
		// Base subjects: Budget (2, 3), Lunch (1, 4): ties by sequence number.
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 3 1 4"},
		{"SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 3 2 4 1"},
		{"SORT (FROM) UTF-8 ALL", "* SORT 2 3 4 1"},
		// DISPLAYTO: "Al", "bob@example.org" (1, 4) and the group's name "Friends".
		{"SORT (DISPLAYTO) UTF-8 ALL", "* SORT 3 1 4 2"},
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 4 1"},
		{"SORT (SIZE) UTF-8 ALL", "* SORT 1 3 2 4"},
		// The search narrows what is sorted.
		{"SORT (DATE) UTF-8 SUBJECT budget", "* SORT 2 3"},
		{"SORT (DATE) UTF-8 SUBJECT nothing", "* SORT"},
		{"UID SORT (REVERSE SIZE) UTF-8 2:4", "* SORT 4 2 3"},
	} {
		lines, status := c.cmd("%s", tt.cmd)
		if !strings.HasPrefix(status, "OK") {
			t.Errorf("%s: %s", tt.cmd, status)
			continue
		}
		got := grep(lines, `^\* SORT`)
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %q, want %q", tt.cmd, lines, tt.want)
		}
	}
}

// ESORT (RFC 5267): MIN and MAX are the first and last in sort order, ALL keeps it.
func TestESort(t *testing.T) {
	_, c := sortEnv(t)
	c.tags = 0 // the tags below count from T1
	for _, tt := range []struct{ cmd, want string }{
		{"SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL", `* ESEARCH (TAG "T1") MIN 2 MAX 4 COUNT 4`},
		{"SORT RETURN (ALL) (DATE) UTF-8 ALL", `* ESEARCH (TAG "T2") ALL 2,1,3:4`},
		{"SORT RETURN () (REVERSE SIZE) UTF-8 ALL", `* ESEARCH (TAG "T3") ALL 4,2:3,1`},
		{"UID SORT RETURN (COUNT ALL) (DATE) UTF-8 SUBJECT nothing", `* ESEARCH (TAG "T4") UID COUNT 0`},
	} {
		lines := c.ok("%s", tt.cmd)
		if got := grep(lines, `^\* ESEARCH`); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %q, want %q", tt.cmd, lines, tt.want)
		}
	}
}

func TestSortBadInput(t *testing.T) {
	_, c := sortEnv(t)
	for _, tt := range []struct{ cmd, want string }{
		{"SORT (DATE) KOI8-R ALL", "NO [BADCHARSET"},
		{"SORT (DATE) ALL", "NO [BADCHARSET"}, // the charset is not optional: ALL is taken for one
		{"SORT (NAME) UTF-8 ALL", "BAD"},
		{"SORT () UTF-8 ALL", "BAD"},
		{"SORT RETURN (SAVE) (DATE) UTF-8 ALL", "BAD"},
		{"THREAD SOMETHING UTF-8 ALL", "BAD"},
		{"THREAD REFERENCES UTF-8", "BAD"},
	} {
		if _, status := c.cmd("%s", tt.cmd); !strings.HasPrefix(status, tt.want) {
			t.Errorf("%s: %s, want %s", tt.cmd, status, tt.want)
		}
	}
	// The session is still in step.
	c.ok("NOOP")
}

// THREAD REFERENCES links 4 to 1 by the References field of the stored header (the
// envelope has no References), the unknown <x@example.org> a dummy removed again.
func TestThread(t *testing.T) {
	_, c := sortEnv(t)
	for _, tt := range []struct{ cmd, want string }{
		// 2 and 3 share their base subject: gathered under a dummy (RFC 5256 §4 step 5).
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD ((2)(3))(1 4)"},
		{"UID THREAD REFERENCES UTF-8 2:4", "* THREAD ((2)(3))(4)"},
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (2 3)(1 4)"},
		{"THREAD REFERENCES UTF-8 4", "* THREAD (4)"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"},
	} {
		lines := c.ok("%s", tt.cmd)
		if got := grep(lines, `^\* THREAD`); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %q, want %q", tt.cmd, lines, tt.want)
		}
	}
}

func TestSortCapabilities(t *testing.T) {
	_, c := sortEnv(t)
	caps := c.ok("CAPABILITY")[0]
	for _, want := range []string{" SORT ", " SORT=DISPLAY ", " ESORT ", " THREAD=ORDEREDSUBJECT ", " THREAD=REFERENCES "} {
		if !strings.Contains(caps+" ", want) {
			t.Errorf("CAPABILITY %q lacks %q", caps, strings.TrimSpace(want))
		}
	}
}

// SORT and THREAD over ALL keep their answer per mailbox (store.SortSnapshot.Memo); a
// repeated command must still see every arrival and expunge, by this server's sessions or
// by another process on the same store, in the session that made it and in others, and
// keep apart the criteria, the algorithms and UID from sequence numbers.
func TestSortKeptAnswerFollowsChanges(t *testing.T) {
	e, c := sortEnv(t)
	other, err := store.Open(e.dir, store.Options{Logger: slog.New(slog.DiscardHandler), URL: storetest.URL(t, e.dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	inbox := e.mailbox("INBOX")
	expect := func(c *rawClient, step string, want map[string]string) {
		t.Helper()
		for _, cmd := range slices.Sorted(maps.Keys(want)) {
			for range 2 { // the second answer is the kept one
				lines := c.ok("%s", cmd)
				if got := grep(lines, `^\* (SORT|THREAD)`); len(got) != 1 || got[0] != want[cmd] {
					t.Errorf("%s: %s: %q, want %q", step, cmd, lines, want[cmd])
				}
			}
		}
	}
	// Sent dates: 2 (08:00Z), 1 (10:00Z), 3 (11:00Z), 4 (12:00Z); 4 replies to 1.
	expect(c, "first", map[string]string{
		"SORT (DATE) UTF-8 ALL":           "* SORT 2 1 3 4",
		"SORT (REVERSE DATE) UTF-8 ALL":   "* SORT 4 3 1 2",
		"UID SORT (DATE) UTF-8 ALL":       "* SORT 2 1 3 4",
		"THREAD REFERENCES UTF-8 ALL":     "* THREAD ((2)(3))(1 4)",
		"UID THREAD REFERENCES UTF-8 ALL": "* THREAD ((2)(3))(1 4)",
		"THREAD ORDEREDSUBJECT UTF-8 ALL": "* THREAD (2 3)(1 4)",
	})

	// Another process delivers UID 5, sent before all the others, replying to 3.
	early := "From: x@example.org\r\nSubject: Re: Budget\r\nDate: Mon, 1 Jun 2026 07:00:00 +0000\r\n" +
		"Message-ID: <e@example.org>\r\nIn-Reply-To: <c@example.org>\r\n\r\nx\r\n"
	if _, err := other.Deliver(context.Background(), e.acct.ID, strings.NewReader(early), store.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	c.ok("NOOP")
	arrived := map[string]string{
		"SORT (DATE) UTF-8 ALL":           "* SORT 5 2 1 3 4",
		"UID SORT (DATE) UTF-8 ALL":       "* SORT 5 2 1 3 4",
		"THREAD REFERENCES UTF-8 ALL":     "* THREAD ((2)(3 5))(1 4)",
		"THREAD ORDEREDSUBJECT UTF-8 ALL": "* THREAD (5 (2)(3))(1 4)",
	}
	expect(c, "after another process's arrival", arrived)
	d := e.rawLogin()
	d.ok("EXAMINE INBOX")
	expect(d, "another session, after the arrival", arrived)

	// Another process expunges UID 2 (as POP3's DELE and QUIT would) and delivers UID 6:
	// the same number of messages as before.
	if _, err := other.Expunge(context.Background(), inbox.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	late := "Subject: Late\r\nDate: Mon, 1 Jun 2026 23:00:00 +0000\r\nMessage-ID: <f@example.org>\r\n\r\nx\r\n"
	if _, err := other.Deliver(context.Background(), e.acct.ID, strings.NewReader(late), store.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	// Before the EXPUNGE reaches the session, UID 2 keeps its sequence number but is not
	// sorted; UID 6 is not in the view yet.
	lines := c.ok("SORT (DATE) UTF-8 ALL")
	if got := grep(lines, `^\* SORT`); len(got) != 1 || got[0] != "* SORT 5 1 3 4" {
		t.Errorf("expunge not yet announced: %q, want * SORT 5 1 3 4", lines)
	}
	c.ok("NOOP")
	// UIDs 1 3 4 5 6 are now sequence numbers 1 2 3 4 5.
	changed := map[string]string{
		"SORT (DATE) UTF-8 ALL":       "* SORT 4 1 2 3 5",
		"UID SORT (DATE) UTF-8 ALL":   "* SORT 5 1 3 4 6",
		"THREAD REFERENCES UTF-8 ALL": "* THREAD (1 3)(2 4)(5)",
	}
	expect(c, "after an expunge and an arrival", changed)
	f := e.rawLogin()
	f.ok("SELECT INBOX")
	expect(f, "another session, after the expunge", changed)

	// This server's own session expunges: UID 1 goes.
	f.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	f.ok("EXPUNGE")
	c.ok("NOOP")
	expect(c, "after a session's EXPUNGE", map[string]string{
		"SORT (DATE) UTF-8 ALL":     "* SORT 3 1 2 4",
		"UID SORT (DATE) UTF-8 ALL": "* SORT 5 3 4 6",
	})
}
