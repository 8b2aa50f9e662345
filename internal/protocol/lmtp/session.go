package lmtp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// maxPathLength bounds a reverse- or forward-path (RFC 5321 §4.5.3.1.3: 256 octets).
const maxPathLength = 256

// deliveryTimeout bounds the store work for one transaction, so a wedged store cannot hold
// a connection (and Shutdown) forever; the MTA then gets a 4xx and retries.
const deliveryTimeout = 5 * time.Minute

// session is one LMTP connection's transaction state. go-smtp enforces the command order
// (LHLO, then MAIL, then RCPT, then DATA: RFC 2033 §4.1) before calling it, except for a
// second MAIL inside a transaction, which Mail refuses.
type session struct {
	s      *Server
	conn   *trackedConn
	remote string

	// mu guards the transaction state: with BDAT (RFC 3030) go-smtp runs LMTPData in its
	// own goroutine while the connection's goroutine reads the next chunk, and an RSET or a
	// refused chunk calls Reset meanwhile.
	mu      sync.Mutex
	hasFrom bool
	from    string      // reverse-path; "" is the null sender <>
	rcpts   []recipient // accepted recipients, in RCPT order (as go-smtp lists them)

	// For the logout line (Logout); the counters LMTPData changes are guarded by mu too.
	start             time.Time
	client            string // the LHLO name
	accepted, refused int    // RCPT verdicts
	delivered         int    // recipients whose copy was stored (DATA 250)
	messages          int    // DATA transactions
	bytes             int64  // octets of the messages received
}

// recipient is an accepted RCPT.
type recipient struct {
	addr    string // as the client gave it: the key of its DATA status
	account store.Account
	// mailbox is where the message should go: the folder a +detail named, or "" (INBOX).
	mailbox string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	if s.closed.Load() {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down"}
	}
	sess := &session{s: s, conn: tracked(c.Conn()), start: time.Now(), client: c.Hostname()}
	if ra := c.Conn().RemoteAddr(); ra != nil {
		sess.remote = ra.String()
	}
	// go-smtp makes the session at the first LHLO; later commands are counted by the
	// session methods they call (RSET, NOOP, VRFY and QUIT call none).
	s.opts.Metrics.Command(metrics.LMTP, "lhlo")
	return sess, nil
}

// Mail starts a transaction (RFC 5321 §4.1.1.2). The null reverse-path <> (bounces) is
// accepted.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.opts.Metrics.Command(metrics.LMTP, "mail")
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.hasFrom {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}
	}
	if len(from) > maxPathLength {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Sender address too long"}
	}
	ss.hasFrom, ss.from = true, from
	return nil
}

// Rcpt accepts a recipient if it names an account (RFC 2033 §4.2: the verdict is given
// here, so DATA answers only for accepted recipients).
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) (err error) {
	ss.s.opts.Metrics.Command(metrics.LMTP, "rcpt")
	defer func() {
		if err != nil {
			ss.refused++
		} else {
			ss.accepted++
		}
	}()
	if len(to) > maxPathLength {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Recipient address too long"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	acct, mailbox, err := ss.s.st.ResolveRecipient(ctx, to, ss.s.opts.DetailDelimiter)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNoSuchAccount):
		ss.s.log.Info("recipient refused", "remote", ss.remote, "from", ss.from, "rcpt", to, "reason", "no such user")
		return errNoSuchUser
	default:
		ss.s.log.Warn("recipient lookup failed", "remote", ss.remote, "rcpt", to, "err", err)
		return errTemporary
	}
	if acct.AtQuota() {
		ss.s.log.Info("recipient refused", "remote", ss.remote, "from", ss.from, "rcpt", to, "reason", "over quota")
		return errOverQuota
	}
	if !ss.s.opts.DetailToFolder {
		mailbox = ""
	}
	ss.mu.Lock()
	ss.rcpts = append(ss.rcpts, recipient{addr: to, account: acct, mailbox: mailbox})
	ss.mu.Unlock()
	return nil
}

// Data is never used: go-smtp calls LMTPData in LMTP mode.
func (ss *session) Data(r io.Reader) error {
	return ss.LMTPData(r, discardStatus{})
}

type discardStatus struct{}

func (discardStatus) SetStatus(string, error) {}

// LMTPData reads the message once and stores it for each accepted recipient, giving each
// its own status (RFC 2033 §4.2) as soon as its copy is committed. go-smtp calls it for
// DATA and for BDAT (RFC 3030) alike: with BDAT, r yields the chunks as they arrive and
// ends at BDAT LAST, after which go-smtp writes the replies, one per recipient.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	if ss.conn != nil {
		ss.conn.busy.Store(true) // until Reset, after go-smtp has written the replies
	}
	ss.s.opts.Metrics.Command(metrics.LMTP, "data")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	ss.mu.Lock()
	ss.messages++
	from, rcpts := ss.from, ss.rcpts
	ss.mu.Unlock()

	src := &errReader{r: r}
	sp, err := ss.s.st.Spool(src, store.SpoolOptions{}) // new mail: the content limits apply
	if err != nil {
		// Read what the client still sends: go-smtp drains DATA itself, but with BDAT it
		// writes the per-recipient replies only once the chunks up to LAST are consumed.
		io.Copy(io.Discard, src)
		reply := spoolStatus(err, src.err)
		ss.s.log.Warn("message refused", "remote", ss.remote, "from", from,
			"rcpts", len(rcpts), "reply", replyText(reply), "err", err)
		for _, rc := range rcpts {
			status.SetStatus(rc.addr, reply)
			ss.s.opts.Metrics.Delivery(metrics.ViaLMTP, store.DeliveryOutcome(err))
		}
		return nil
	}
	defer sp.Close()

	done := map[string]*smtp.SMTPError{} // a recipient given twice is stored once
	delivered := 0
	for _, rc := range rcpts {
		key := strings.ToLower(rc.addr)
		reply, ok := done[key]
		if !ok {
			reply = ss.deliver(ctx, from, rc, sp, start)
			done[key] = reply
			if reply.Code == 250 {
				delivered++
			}
		}
		status.SetStatus(rc.addr, reply)
	}
	ss.mu.Lock()
	ss.bytes += sp.Size()
	ss.delivered += delivered
	ss.mu.Unlock()
	return nil
}

// deliver stores the spooled message for one recipient and returns its DATA reply.
func (ss *session) deliver(ctx context.Context, from string, rc recipient, sp *store.Spooled, start time.Time) *smtp.SMTPError {
	opts := store.DeliverOptions{Mailbox: rc.mailbox, Prepend: traceFields(from, rc.addr)}
	d, err := ss.s.st.DeliverSpooled(ctx, rc.account.ID, sp, opts)
	if errors.Is(err, store.ErrNoSuchMailbox) && opts.Mailbox != "" {
		opts.Mailbox = "" // the folder is gone: INBOX rather than a bounce
		d, err = ss.s.st.DeliverSpooled(ctx, rc.account.ID, sp, opts)
	}
	reply := deliveryStatus(err)
	ss.s.opts.Metrics.Delivery(metrics.ViaLMTP, store.DeliveryOutcome(err))
	attrs := []any{
		"remote", ss.remote, "from", from, "rcpt", rc.addr, "account", rc.account.Address,
		"size", sp.Size(), "reply", replyText(reply), "duration", time.Since(start).Round(time.Millisecond),
	}
	if err != nil {
		ss.s.log.Log(ctx, levelFor(reply), "delivery failed", append(attrs, "err", err)...)
	} else {
		ss.s.log.Info("delivered", append(attrs, "mailbox", mailboxName(opts.Mailbox), "uid", d.UID)...)
	}
	return reply
}

// traceFields are the header lines prepended to each copy: the envelope sender (RFC 5321
// §4.4) and the envelope recipient (RFC 9228).
func traceFields(from, rcpt string) []byte {
	return []byte("Return-Path: <" + from + ">\r\nDelivered-To: " + rcpt + "\r\n")
}

func mailboxName(name string) string {
	if name == "" {
		return "INBOX"
	}
	return name
}

func levelFor(reply *smtp.SMTPError) slog.Level {
	if reply.Code >= 500 {
		return slog.LevelInfo // a verdict about the message or recipient, not our trouble
	}
	return slog.LevelWarn
}

// Reset ends the transaction (RSET, a new LHLO, or the end of DATA).
func (ss *session) Reset() {
	ss.mu.Lock()
	ss.hasFrom, ss.from, ss.rcpts = false, "", nil
	ss.mu.Unlock()
	if ss.conn != nil {
		ss.conn.busy.Store(false)
	}
}

// Logout is called once, when the connection closes (or at STARTTLS, which starts a new
// session). It writes the session's logout line: the client, how long it lasted and what
// it delivered.
func (ss *session) Logout() error {
	ss.Reset()
	var in, out int64
	if ss.conn != nil {
		in, out, _ = metrics.Transferred(ss.conn.Conn)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.s.log.Info("lmtp disconnect", "remote", ss.remote, "client", ss.client,
		"duration", time.Since(ss.start).Round(time.Millisecond), "in", in, "out", out,
		"messages", ss.messages, "bytes", ss.bytes, "accepted", ss.accepted,
		"refused", ss.refused, "delivered", ss.delivered)
	return nil
}

// errReader remembers the first error of the client's data stream, so that a refusal can
// tell a client's fault (message too large, line too long, connection lost) from the
// store's, however the store wraps it.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
