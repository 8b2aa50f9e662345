// Package letterboxtest runs a complete Letterbox server inside a Go test: IMAP, POP3, LMTP
// and HTTP (with the JSON API of internal/api) on free loopback ports, over a store in a
// temporary directory, stopped when the test ends.
//
//	srv := letterboxtest.Start(t)
//	srv.AddUser("bob@example.net", "secret")
//	srv.Deliver("bob@example.net", "From: alice@example.org\r\nSubject: Hi\r\n\r\nHello\r\n")
//	// ... point the code under test at srv.IMAPAddr() or srv.POP3Addr() ...
//	mb := srv.WaitForMessages("bob@example.net", "INBOX", 1, 5*time.Second)
//
// Implementation notes:
//
//   - It is internal/server's New, Start and Shutdown over store.Open, the same code `letterbox
//     serve` runs; only the configuration differs: the built-in defaults (config.Defaults: no
//     file, no environment), every listener on 127.0.0.1:0, no implicit TLS, no delay after a
//     failed login, hostname "letterbox.test", and the JSON API on for loopback clients.
//     The test's clients all connect from loopback, which limits.max_userip_connections
//     counts like any address, so that limit is off (a test may open many sessions of one
//     account); WithConfig can set it back.
//   - Deliver stores through the store, as the LMTP server does (a waiting IMAP IDLE is told
//     at once), but stores the message exactly as given (CRLF-normalised): no Return-Path or
//     Delivered-To is prepended, so a test knows the bytes POP3 RETR returns.
//   - Mailbox is a snapshot taken from the store, not through a protocol; its UIDLs come
//     from the rules internal/protocol/pop3 serves by (internal/maildrop), so they are the ones a
//     POP3 session shows.
//   - WaitForMessages waits on store.Watch: it wakes on each commit to the account and
//     counts again; it never sleeps or polls.
//   - WithDeterministic makes UIDVALIDITY and INTERNALDATE functions of the test's own
//     actions, so that protocol transcripts are byte-for-byte the same on every run.
//   - Helpers fail the test (t.Fatalf) on error, so they belong on the test's goroutine.
package letterboxtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/api"
	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/server"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Hostname is the name the test server gives itself in greetings.
const Hostname = "letterbox.test"

// DeterministicEpoch is where the clock of WithDeterministic starts.
var DeterministicEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Option changes how Start sets the server up.
type Option func(*settings)

type settings struct {
	clock         func() time.Time // WithClock
	deterministic bool             // WithDeterministic: a stepping clock unless clock is set
	uidValidity   func(last uint32) uint32
	configure     []func(*config.Config)
	logger        *slog.Logger
}

// WithDeterministic makes a run repeatable. Every account's INBOX gets UIDVALIDITY seed (1
// if seed is 0), its default folders the next numbers in name order (Archives, Drafts,
// Junk, Sent, Trash), and each mailbox created later the next number after the account's
// last. The clock (INTERNALDATE, account creation) starts at DeterministicEpoch and moves
// one second each time the store reads it, unless WithClock sets another.
func WithDeterministic(seed uint32) Option {
	return func(s *settings) {
		base := max(seed, 1)
		s.uidValidity = func(last uint32) uint32 { return max(base, last+1) }
		s.deterministic = true
	}
}

// WithClock sets the store's clock: INTERNALDATE of delivered messages and the creation
// time of accounts. It overrides the clock of WithDeterministic, whatever their order.
func WithClock(now func() time.Time) Option {
	return func(s *settings) { s.clock = now }
}

// WithConfig changes the configuration before the server starts (pop3.delete,
// pop3.uidl_format, folders, limits, TLS...). The listener addresses may be changed too;
// an empty one disables that listener.
func WithConfig(fn func(*config.Config)) Option {
	return func(s *settings) { s.configure = append(s.configure, fn) }
}

// WithLogger sends the server's log to logger (the default discards it).
func WithLogger(logger *slog.Logger) Option {
	return func(s *settings) { s.logger = logger }
}

// steppingClock returns start, start+step, start+2*step, ... on successive calls.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(step)
		return t
	}
}

// TB is the part of testing.TB that the server uses; *testing.T and *testing.B are TBs.
// (An Example function, which has no *testing.T, can pass a small type of its own.)
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var _ TB = testing.TB(nil)

// Server is a running test server.
type Server struct {
	t   TB
	cfg *config.Config
	st  *store.Store
	srv *server.Server
}

// Start starts a server for the test and stops it (and removes its store) when the test
// ends. It fails the test if the server cannot start.
func Start(t TB, opts ...Option) *Server {
	t.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	now := s.clock
	if now == nil && s.deterministic {
		now = steppingClock(DeterministicEpoch, time.Second)
	}
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatalf("letterboxtest: %v", err)
	}
	cfg.Data = t.TempDir()
	cfg.Hostname = Hostname
	cfg.IMAP.Addr, cfg.POP3.Addr, cfg.LMTP.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Auth.FailureDelay = 0
	cfg.Limits.MaxUserIPConnections = 0
	cfg.API.Enabled, cfg.API.OpenOnLoopback = true, true
	for _, fn := range s.configure {
		fn(cfg)
	}
	logger := s.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	st, err := store.Open(cfg.Data, store.Options{
		Logger:            logger,
		Now:               now,
		UIDValidity:       s.uidValidity,
		MmapSize:          cfg.Store.StoreMmapSize(),
		MaxMessageSize:    cfg.Limits.MessageSize,
		MaxHeaderSize:     cfg.Limits.StoreHeaderSize(),
		MaxMIMEDepth:      cfg.Limits.StoreMIMEDepth(),
		Folders:           cfg.Folders.Store(),
		QuotaGrace:        cfg.Quota.GraceFor,
		QuotaMessageGrace: cfg.Quota.MessageGraceFor,
		ExpungeRetention:  cfg.IMAP.StoreExpungeRetention(),
	})
	if err != nil {
		t.Fatalf("letterboxtest: open the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(cfg, st, logger)
	if err != nil {
		t.Fatalf("letterboxtest: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("letterboxtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("letterboxtest: shutdown: %v", err)
		}
	})
	return &Server{t: t, cfg: cfg, st: st, srv: srv}
}

func (s *Server) addr(name string) string {
	if a := s.srv.Addr(name); a != nil {
		return a.String()
	}
	return ""
}

// IMAPAddr is the IMAP listener's host:port ("" if disabled).
func (s *Server) IMAPAddr() string { return s.addr(server.IMAP) }

// POP3Addr is the POP3 listener's host:port ("" if disabled).
func (s *Server) POP3Addr() string { return s.addr(server.POP3) }

// LMTPAddr is the LMTP listener's host:port ("" if disabled).
func (s *Server) LMTPAddr() string { return s.addr(server.LMTP) }

// HTTPAddr is the HTTP listener's host:port ("" if disabled).
func (s *Server) HTTPAddr() string { return s.addr(server.HTTP) }

// APIURL is the base URL of the JSON API (docs/api.yaml), open to loopback clients without
// a token: "http://127.0.0.1:PORT/api/v1". "" if HTTP is disabled.
func (s *Server) APIURL() string {
	if a := s.HTTPAddr(); a != "" {
		return "http://" + a + strings.TrimSuffix(api.Prefix, "/")
	}
	return ""
}

// Store is the server's store, for what the helpers do not cover.
func (s *Server) Store() *store.Store { return s.st }

// Config is the configuration the server runs with (read it; changing it has no effect).
func (s *Server) Config() *config.Config { return s.cfg }

// AddUser creates an account with INBOX and the default folders.
func (s *Server) AddUser(address, password string) {
	s.t.Helper()
	if _, err := s.st.CreateAccount(context.Background(), store.NewAccount{Address: address, Password: password}); err != nil {
		s.t.Fatalf("letterboxtest: add user %s: %v", address, err)
	}
}

// Delivered says where Deliver stored a message.
type Delivered struct {
	Mailbox     string
	UID         uint32
	UIDValidity uint32
	UIDL        string // the POP3 UIDL; "" outside INBOX
	Size        int64  // octets, CRLF-normalised
}

// Deliver stores msg (an RFC 5322 message; bare LF line ends are fine) in user's INBOX.
// For a []byte, pass string(b).
func (s *Server) Deliver(user, msg string) Delivered {
	s.t.Helper()
	return s.DeliverTo(user, "INBOX", msg)
}

// DeliverTo stores msg in one of user's mailboxes.
func (s *Server) DeliverTo(user, mailbox, msg string) Delivered {
	s.t.Helper()
	ctx := context.Background()
	a := s.account(user)
	mb, err := s.st.MailboxByName(ctx, a.ID, mailbox)
	if err != nil {
		s.t.Fatalf("letterboxtest: deliver to %s %s: %v", user, mailbox, err)
	}
	d, err := s.st.Deliver(ctx, a.ID, strings.NewReader(msg), store.DeliverOptions{Mailbox: mb.Name})
	if err != nil {
		s.t.Fatalf("letterboxtest: deliver to %s %s: %v", user, mailbox, err)
	}
	out := Delivered{Mailbox: mb.Name, UID: d.UID, UIDValidity: d.UIDValidity, Size: d.Size}
	if mb.Name == "INBOX" {
		out.UIDL = s.uidl(d.UID, d.UIDValidity)
	}
	return out
}

func (s *Server) account(user string) store.Account {
	s.t.Helper()
	a, err := s.st.LookupAccount(context.Background(), user)
	if err != nil {
		s.t.Fatalf("letterboxtest: %s: %v", user, err)
	}
	return a
}

func (s *Server) uidl(uid, uidValidity uint32) string {
	u, err := maildrop.FormatUIDL(s.cfg.POP3.UIDLFormat, uid, uidValidity)
	if err != nil {
		s.t.Fatalf("letterboxtest: %v", err)
	}
	return u
}

// Mailbox is a snapshot of one mailbox.
type Mailbox struct {
	Name        string
	SpecialUse  string // RFC 6154 attribute, such as \Sent; "" if none
	UIDValidity uint32
	UIDNext     uint32
	Messages    []Message // in UID order
}

// Message is one message of a Mailbox snapshot.
type Message struct {
	UID          uint32
	Flags        []string // IMAP flags and keywords, sorted: system flags first
	Size         int64
	InternalDate time.Time
	// UIDL is what POP3 UIDL shows for the message: set for the INBOX messages a POP3
	// session lists (not those a POP3 DELE hid in the keep-flagged or hide delete modes).
	UIDL      string
	Subject   string // decoded
	From      string // "Name <local@domain>", several joined by ", "
	MessageID string // with angle brackets
}

// HasFlag reports whether the message carries flag (case-insensitive).
func (m Message) HasFlag(flag string) bool {
	for _, f := range m.Flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

// UIDs lists the UIDs of the snapshot's messages.
func (mb Mailbox) UIDs() []uint32 {
	out := make([]uint32, len(mb.Messages))
	for i, m := range mb.Messages {
		out[i] = m.UID
	}
	return out
}

// Mailbox takes a snapshot of one of user's mailboxes.
func (s *Server) Mailbox(user, name string) Mailbox {
	s.t.Helper()
	mb, err := s.snapshot(s.account(user), name)
	if err != nil {
		s.t.Fatalf("letterboxtest: %s %s: %v", user, name, err)
	}
	return mb
}

func (s *Server) snapshot(a store.Account, name string) (Mailbox, error) {
	ctx := context.Background()
	mb, err := s.st.MailboxByName(ctx, a.ID, name)
	if err != nil {
		return Mailbox{}, err
	}
	mds, err := s.st.Metadata(ctx, mb.ID)
	if err != nil {
		return Mailbox{}, err
	}
	out := Mailbox{Name: mb.Name, SpecialUse: mb.SpecialUse, UIDValidity: mb.UIDValidity,
		UIDNext: mb.UIDNext, Messages: make([]Message, 0, len(mds))}
	for _, md := range mds {
		m := Message{UID: md.UID, Flags: md.Flags, Size: md.Size, InternalDate: md.InternalDate,
			Subject: md.Envelope.Subject, From: mailmsg.FormatAddresses(md.Envelope.From),
			MessageID: md.Envelope.MessageID}
		if mb.Name == "INBOX" && maildrop.InMaildrop(md.Message, s.cfg.POP3.Delete) {
			m.UIDL = s.uidl(md.UID, mb.UIDValidity)
		}
		out.Messages = append(out.Messages, m)
		if md.UID >= out.UIDNext {
			out.UIDNext = md.UID + 1 // the mailbox row was read a moment before the messages
		}
	}
	return out, nil
}

// WaitForMessages waits until user's mailbox holds at least n messages and returns its
// snapshot then; it fails the test after timeout. It wakes on every change to the account
// (store.Watch), whichever protocol or process made it; it does not poll.
func (s *Server) WaitForMessages(user, mailbox string, n int, timeout time.Duration) Mailbox {
	s.t.Helper()
	mb, err := s.waitFor(user, mailbox, timeout, func(mb Mailbox) bool { return len(mb.Messages) >= n })
	if err != nil {
		s.t.Fatalf("letterboxtest: waiting for %d messages in %s %s: %v", n, user, mailbox, err)
	}
	return mb
}

// errTimeout is what waitFor returns when time runs out.
var errTimeout = errors.New("timed out")

// waitFor takes snapshots of a mailbox until done accepts one, one per change to the
// account. The watch is registered before the first snapshot, so no change slips between.
func (s *Server) waitFor(user, mailbox string, timeout time.Duration, done func(Mailbox) bool) (Mailbox, error) {
	a, err := s.st.LookupAccount(context.Background(), user)
	if err != nil {
		return Mailbox{}, err
	}
	changed, cancel := s.st.Watch(a.ID)
	defer cancel()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var last Mailbox
	for {
		mb, err := s.snapshot(a, mailbox)
		if err != nil && !errors.Is(err, store.ErrNoSuchMailbox) {
			return Mailbox{}, err
		}
		if err == nil {
			last = mb
			if done(mb) {
				return mb, nil
			}
		}
		select {
		case <-changed:
		case <-timer.C:
			return last, fmt.Errorf("%w after %v with %d messages", errTimeout, timeout, len(last.Messages))
		}
	}
}
