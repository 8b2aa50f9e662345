package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Deliver stores one message for an account (see DeliverOptions). The message is read once,
// CRLF-normalised and parsed while it is spooled; it is durable when Deliver returns nil.
// Errors: ErrNoSuchMailbox, ErrOverQuota, ErrTooBig, ErrNotMessage, ErrTemporary.
func (s *Store) Deliver(ctx context.Context, accountID int64, r io.Reader, opts DeliverOptions) (Delivered, error) {
	sp, err := s.Spool(r)
	if err != nil {
		return Delivered{}, err
	}
	defer sp.Close()
	return s.DeliverSpooled(ctx, accountID, sp, opts)
}

// Spooled is a message read and parsed, ready to be delivered.
type Spooled struct {
	f    *os.File
	name string // still to remove at Close ("" once removed)
	size int64
	md   *parsed

	mu     sync.Mutex
	bodyID int64 // the body stored (without Prepend) by an earlier DeliverSpooled, or 0
}

// Spool reads, normalises and parses a message once, for delivery to several accounts with
// DeliverSpooled (LMTP with several recipients); the raw message is then stored only once.
// The caller closes the Spooled. The spool file lives in the data directory's tmp/ and is
// unlinked at once where the system allows, so that a crash leaves nothing behind.
func (s *Store) Spool(r io.Reader) (*Spooled, error) {
	f, err := os.CreateTemp(s.tmpDir(), "spool-*")
	if err != nil {
		return nil, wrapErr("spool", err)
	}
	sp := &Spooled{f: f, name: f.Name()}
	if os.Remove(f.Name()) == nil {
		sp.name = ""
	}
	if err := sp.fill(r, s.maxSize); err != nil {
		sp.Close()
		if errors.Is(err, ErrTooBig) || errors.Is(err, ErrNotMessage) {
			return nil, fmt.Errorf("store: spool: %w", err)
		}
		return nil, wrapErr("spool", err)
	}
	return sp, nil
}

// fill copies r into the spool file, CRLF-normalised, then describes the message.
func (sp *Spooled) fill(r io.Reader, limit int64) error {
	bw := bufio.NewWriterSize(sp.f, 64<<10)
	cw := &crlfWriter{w: bw, limit: limit}
	if _, err := io.Copy(cw, r); err != nil {
		return err
	}
	if err := cw.finish(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	sp.size = cw.n
	if sp.size == 0 {
		return ErrNotMessage
	}
	md, err := parseMessage(sp.f, sp.size)
	if err != nil {
		return err
	}
	sp.md = md
	return nil
}

// Close removes the spool file.
func (sp *Spooled) Close() error {
	err := sp.f.Close()
	if sp.name != "" {
		if rerr := os.Remove(sp.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		sp.name = ""
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("store: close spool: %w", err)
	}
	return nil
}

// Size is the size of the normalised message (without any Prepend).
func (sp *Spooled) Size() int64 { return sp.size }

// Envelope is the spooled message's envelope (for logging: Message-ID, From, Subject).
func (sp *Spooled) Envelope() Envelope { return sp.md.envelope }

// DeliverSpooled stores a spooled message for one account, as Deliver does. Without a
// Prepend, every delivery of the same Spooled shares one stored body; with one, each
// delivery stores its own (prepend + message).
func (s *Store) DeliverSpooled(ctx context.Context, accountID int64, sp *Spooled, opts DeliverOptions) (Delivered, error) {
	// The size limit applied to the message as received (Spool); the prepended trace
	// header lines are ours and do not count against it.
	prepend := normalizePrepend(opts.Prepend)
	size := sp.size + int64(len(prepend))
	flags := parseFlags(opts.Flags)
	date := opts.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	unix, tz := splitDate(date)
	mailbox := opts.Mailbox
	if mailbox == "" {
		mailbox = "INBOX"
	}

	var d Delivered
	var newBody int64
	err := s.write(ctx, "deliver", func(wt *writeTx) error {
		m, err := wt.mailboxByName(accountID, mailbox)
		if err != nil {
			return err
		}
		if err := wt.checkQuota(accountID, size); err != nil {
			return err
		}
		bodyID, err := wt.spooledBody(sp, prepend, size)
		if err != nil {
			return err
		}
		if len(prepend) == 0 {
			newBody = bodyID
		}
		_, modseq, err := wt.insertMessage(m, m.UIDNext, bodyID, flags, unix, tz, size)
		if err != nil {
			return err
		}
		if err := wt.setUIDNext(m, int64(m.UIDNext)+1); err != nil {
			return err
		}
		d = Delivered{MailboxID: m.ID, UIDValidity: m.UIDValidity, UID: m.UIDNext, Size: size, ModSeq: modseq}
		return nil
	})
	if err != nil {
		return Delivered{}, err
	}
	if newBody != 0 {
		// Only now: a body id from a rolled-back transaction could be handed out again.
		sp.mu.Lock()
		sp.bodyID = newBody
		sp.mu.Unlock()
	}
	s.log.Debug("message delivered", "account", accountID, "mailbox", mailbox, "uid", d.UID, "size", size)
	return d, nil
}

// spooledBody returns the body to refer to: the one an earlier delivery of sp stored, if
// it still exists (it goes when its last message is expunged), else a new one.
func (wt *writeTx) spooledBody(sp *Spooled, prepend []byte, size int64) (int64, error) {
	if len(prepend) == 0 {
		sp.mu.Lock()
		id := sp.bodyID
		sp.mu.Unlock()
		if id != 0 {
			var one int
			err := wt.queryRow(`SELECT 1 FROM bodies WHERE id = ?`, id).Scan(&one)
			if err == nil {
				return id, nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return 0, err
			}
		}
		return wt.insertBody(sp.md, io.NewSectionReader(sp.f, 0, sp.size), size)
	}
	r := io.MultiReader(bytes.NewReader(prepend), io.NewSectionReader(sp.f, 0, sp.size))
	return wt.insertBody(sp.md.withPrepend(prepend), r, size)
}

// normalizePrepend makes header lines to put before a message: CRLF line ends, a final
// CRLF, and no empty line (which would end the header early).
func normalizePrepend(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var out []byte
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			out = append(append(out, line...), '\r', '\n')
		}
	}
	return out
}

// crlfWriter writes what it is given with every line ending (CRLF, bare LF, bare CR) made
// CRLF, refusing to write more than limit octets (ErrTooBig) so that an oversized message
// is never read whole. finish ends an unterminated last line with CRLF.
type crlfWriter struct {
	w     *bufio.Writer
	limit int64
	n     int64
	cr    bool // the last byte written was a CR whose LF is still due
	last  byte
}

func (c *crlfWriter) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c.n+int64(len(b)) > c.limit {
		return fmt.Errorf("more than %d bytes: %w", c.limit, ErrTooBig)
	}
	c.n += int64(len(b))
	c.last = b[len(b)-1]
	_, err := c.w.Write(b)
	return err
}

var crlf = []byte("\r\n")

func (c *crlfWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if c.cr {
			c.cr = false
			if err := c.emit(crlf[1:]); err != nil {
				return 0, err
			}
			if p[0] == '\n' { // the CR's own LF
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			if err := c.emit(p); err != nil {
				return 0, err
			}
			break
		}
		if err := c.emit(p[:i]); err != nil {
			return 0, err
		}
		if p[i] == '\n' {
			if err := c.emit(crlf); err != nil {
				return 0, err
			}
		} else {
			if err := c.emit(crlf[:1]); err != nil {
				return 0, err
			}
			c.cr = true
		}
		p = p[i+1:]
	}
	return total, nil
}

func (c *crlfWriter) finish() error {
	switch {
	case c.cr:
		c.cr = false
		return c.emit(crlf[1:])
	case c.n > 0 && c.last != '\n':
		return c.emit(crlf)
	}
	return nil
}
