package sessions

import (
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestAddListRemove(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2026, 11, 22, 6, 40, 0, 0, time.UTC)
	var entries []*Entry
	for i := range 11 {
		entries = append(entries, r.Add(Session{ID: "ignored", Protocol: "imap", Start: t0}))
		if got := entries[i].ID(); got != strconv.Itoa(i+1) {
			t.Fatalf("ID %q, want %d", got, i+1)
		}
	}
	entries[1].SetUser("alice")
	entries[1].SetMailbox("INBOX")
	entries[1].SetTLS()
	entries[1].SetTrace("x.log")
	list := r.List()
	if len(list) != 11 || list[0].ID != "1" || list[9].ID != "10" || list[10].ID != "11" {
		t.Fatalf("List is not in start and ID order: %+v", list)
	}
	if s := list[1]; s.User != "alice" || s.Mailbox != "INBOX" || !s.TLS || s.Trace != "x.log" {
		t.Errorf("updated session: %+v", s)
	}
	list[1].User = "mallory" // a copy
	if entries[1].Session().User != "alice" {
		t.Error("List hands out the registry's own sessions")
	}
	entries[0].Remove()
	entries[0].Remove()
	if r.Len() != 10 {
		t.Errorf("Len %d after removing one of 11", r.Len())
	}
}

func TestChangesAreNoted(t *testing.T) {
	e := NewRegistry().Add(Session{})
	var notes []string
	e.OnChange(func(ev string) { notes = append(notes, ev) })
	e.SetUser("alice")
	e.SetMailbox("Work/2024")
	e.SetMailbox("")
	e.SetTLS()
	e.SetRemote("203.0.113.7:0")
	e.SetUser("")
	want := []string{"user alice", "mailbox Work/2024", "mailbox closed", "remote 203.0.113.7:0", "unauthenticated"}
	if len(notes) != len(want) {
		t.Fatalf("notes %q, want %q", notes, want)
	}
	for i := range want {
		if notes[i] != want[i] {
			t.Errorf("notes %q, want %q", notes, want)
		}
	}
}

func TestNilEntryDoesNothing(t *testing.T) {
	var e *Entry
	e.SetUser("alice")
	e.SetMailbox("INBOX")
	e.SetTLS()
	e.SetTrace("x")
	e.OnChange(func(string) {})
	e.Remove()
	if e.ID() != "" || e.Session() != (Session{}) {
		t.Error("a nil entry has a session")
	}
}

type tracked struct {
	net.Conn
	e *Entry
}

func (c tracked) SessionEntry() *Entry { return c.e }

func TestOfLooksThroughTLS(t *testing.T) {
	e := NewRegistry().Add(Session{})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Of(tls.Server(tracked{Conn: a, e: e}, &tls.Config{})); got != e {
		t.Errorf("Of(*tls.Conn over a tracked conn) = %v, want the entry", got)
	}
	if got := Of(a); got != nil {
		t.Errorf("Of(untracked) = %v, want nil", got)
	}
	if got := Of(nil); got != nil {
		t.Errorf("Of(nil) = %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				e := r.Add(Session{Protocol: "pop3"})
				e.SetUser("u")
				_ = r.List()
				e.Remove()
			}
		}()
	}
	wg.Wait()
	if r.Len() != 0 {
		t.Errorf("%d sessions left", r.Len())
	}
}
