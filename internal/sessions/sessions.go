// Package sessions is the registry of live IMAP, POP3 and LMTP sessions: who is connected,
// from where, since when, as which user, with which mailbox selected, and the name of the
// session's wire trace. The web inspector and the JSON API list it.
//
// Implementation notes:
//
//   - A session is added when its connection is accepted (internal/trace does it for every
//     protocol listener) and removed when the connection is closed; the protocols only
//     report what they learn later (Entry.SetUser at login, Entry.SetMailbox at SELECT),
//     finding their entry from their connection with Of.
//   - One mutex guards the whole registry; an entry costs one map slot and one small
//     struct, and nothing runs per idle session, so thousands of open sessions are cheap.
//     List copies the entries, so callers never hold the lock.
//   - Every method of a nil *Entry does nothing, so a protocol served without the registry
//     (a unit test on a bare listener) needs no special case.
//   - IDs are short decimal numbers, unique for the life of the Registry.
package sessions

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Session is what the registry knows of one live session.
type Session struct {
	ID       string    `json:"id"`
	Protocol string    `json:"protocol"` // imap, pop3 or lmtp
	Remote   string    `json:"remote"`   // the client's address
	User     string    `json:"user"`     // the account, once logged in; "" before
	Mailbox  string    `json:"mailbox"`  // IMAP: the selected mailbox; "" if none
	TLS      bool      `json:"tls"`      // implicit TLS, or STARTTLS/STLS done
	Start    time.Time `json:"start"`
	Trace    string    `json:"trace"` // the trace file's name (internal/trace), "" without --trace
}

// Registry holds the live sessions. It is safe for concurrent use; the zero value is not
// usable, use NewRegistry.
type Registry struct {
	mu   sync.Mutex
	live map[*Entry]struct{}
	next uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{live: make(map[*Entry]struct{})}
}

// Entry is one registered session, as its protocol updates it.
type Entry struct {
	r *Registry
	s Session // guarded by r.mu
	// note, if set, hears every change (for the session's trace); called without r.mu.
	note func(event string)
}

// Add registers a new session with a fresh ID (s.ID is ignored) and returns its entry.
func (r *Registry) Add(s Session) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	s.ID = strconv.FormatUint(r.next, 10)
	e := &Entry{r: r, s: s}
	r.live[e] = struct{}{}
	return e
}

// List returns a copy of every live session, oldest first.
func (r *Registry) List() []Session {
	r.mu.Lock()
	out := make([]Session, 0, len(r.live))
	for e := range r.live {
		out = append(out, e.s)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	})
	return out
}

// compareIDs orders decimal IDs numerically.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// Len is the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

// Session returns a copy of the entry's session as it stands.
func (e *Entry) Session() Session {
	if e == nil {
		return Session{}
	}
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	return e.s
}

// ID is the session's ID ("" for a nil entry).
func (e *Entry) ID() string {
	if e == nil {
		return ""
	}
	return e.Session().ID
}

// OnChange sets the function told about every later change, in words ("user alice",
// "mailbox INBOX"); internal/trace writes them into the session's trace.
func (e *Entry) OnChange(note func(event string)) {
	if e == nil {
		return
	}
	e.r.mu.Lock()
	e.note = note
	e.r.mu.Unlock()
}

// update changes the session under the lock and, if that changed it, tells the note
// function, if any.
func (e *Entry) update(event string, fn func(s *Session)) {
	if e == nil {
		return
	}
	e.r.mu.Lock()
	before := e.s
	fn(&e.s)
	changed := e.s != before
	note := e.note
	e.r.mu.Unlock()
	if changed && note != nil && event != "" {
		note(event)
	}
}

// SetUser records the account the session logged in as; "" when it went back to the
// not-authenticated state (IMAP UNAUTHENTICATE).
func (e *Entry) SetUser(user string) {
	event := "user " + user
	if user == "" {
		event = "unauthenticated"
	}
	e.update(event, func(s *Session) { s.User = user })
}

// SetMailbox records the mailbox the session selected; "" when it closed it.
func (e *Entry) SetMailbox(name string) {
	event := "mailbox " + name
	if name == "" {
		event = "mailbox closed"
	}
	e.update(event, func(s *Session) { s.Mailbox = name })
}

// SetRemote records the client's address as the session learnt it later than the
// connection's (IMAP ID x-originating-ip from a trusted webmail).
func (e *Entry) SetRemote(remote string) {
	e.update("remote "+remote, func(s *Session) { s.Remote = remote })
}

// SetTLS records that the session is protected by TLS now.
func (e *Entry) SetTLS() {
	e.update("", func(s *Session) { s.TLS = true })
}

// SetTrace records the name of the session's trace file.
func (e *Entry) SetTrace(name string) {
	e.update("", func(s *Session) { s.Trace = name })
}

// Remove takes the session out of the registry; calling it again does nothing.
func (e *Entry) Remove() {
	if e == nil {
		return
	}
	e.r.mu.Lock()
	delete(e.r.live, e)
	e.r.mu.Unlock()
}

// Tracked is implemented by a connection that carries a registry entry (internal/trace's).
type Tracked interface {
	SessionEntry() *Entry
}

// Of finds the entry of the session served over c: c itself, or a connection beneath it
// (a *tls.Conn or another wrapper with a NetConn method), carries it. It returns nil when
// none does; every method of a nil entry does nothing.
func Of(c net.Conn) *Entry {
	for range 8 { // wrappers nest a few deep at most
		switch v := c.(type) {
		case nil:
			return nil
		case Tracked:
			return v.SessionEntry()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
