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

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// Deliver stores one message for an account (see DeliverOptions). The message is read once,
// CRLF-normalised and parsed while it is spooled; it is durable when Deliver returns nil.
// Errors: ErrNoSuchMailbox, ErrOverQuota, ErrTooBig, ErrNotMessage, ErrTemporary, and for new
// mail (not opts.Migrated) a *ContentLimitError (ErrHeaderTooBig, ErrNestingTooDeep).
func (s *Store) Deliver(ctx context.Context, accountID int64, r io.Reader, opts DeliverOptions) (Delivered, error) {
	sp, err := s.Spool(r, SpoolOptions{Migrated: opts.Migrated, AnyOctets: opts.AnyOctets, Binary: opts.Binary})
	if err != nil {
		return Delivered{}, err
	}
	defer sp.Close()
	return s.DeliverSpooled(ctx, accountID, sp, opts)
}

// Spooled is a message read and parsed, ready to be delivered.
type Spooled struct {
	data io.ReaderAt // the normalised message: in memory, or the spool file
	file *spoolFile  // nil while the message fits in memory
	size int64
	md   *mailmsg.Parsed

	mu     sync.Mutex
	bodyID int64 // the body stored (without Prepend) by an earlier DeliverSpooled, or 0
}

// spoolInMemory is how much of a message Spool keeps in memory; a larger message goes to a
// file in tmp/. Most mail is smaller and needs no file at all (creating and removing one
// per delivery cost more than the rest of the spool).
const spoolInMemory = 256 << 10

// Spool reads, normalises and parses a message once, for delivery to several accounts with
// DeliverSpooled (LMTP with several recipients); the raw message is then stored only once.
// The caller closes the Spooled. A message larger than spoolInMemory goes to a spool file
// in the data directory's tmp/, unlinked at once where the system allows, so that a crash
// leaves nothing behind.
//
// The size limit (ErrTooBig) and, unless opts.Migrated, the content limits (a
// *ContentLimitError) are checked as the message is read: Spool stops reading r at the
// first limit crossed, having read at most a few buffers (some 100 KiB) beyond it. The
// caller reads the rest, if the protocol needs it read.
func (s *Store) Spool(r io.Reader, opts SpoolOptions) (*Spooled, error) {
	sp := &Spooled{}
	lim := s.limits
	if opts.Migrated {
		lim = mailmsg.Limits{}
	}
	if err := sp.fill(r, s.maxSize, s.tmpDir(), lim, opts); err != nil {
		sp.Close()
		var cle *ContentLimitError
		if errors.Is(err, ErrTooBig) || errors.Is(err, ErrNotMessage) || errors.As(err, &cle) {
			return nil, fmt.Errorf("store: spool: %w", err)
		}
		return nil, wrapErr("spool", err)
	}
	return sp, nil
}

// fill reads r, CRLF-normalised, into memory or a spool file in dir while the parser reads
// the same octets to describe the message (spoolReader), then decodes the text parts from
// the spool. The parser sees each octet as it is spooled, so a limit stops both at once.
func (sp *Spooled) fill(r io.Reader, limit int64, dir string, lim mailmsg.Limits, opts SpoolOptions) error {
	sw := &spoolWriter{dir: dir}
	bw := bufio.NewWriterSize(sw, 64<<10)
	buf := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(buf)
	in := &spoolReader{src: r, spool: bw, buf: *buf}
	in.cw = crlfWriter{w: in, limit: limit, raw: opts.Binary}
	p, md, err := mailmsg.Parse(in, lim, opts.AnyOctets)
	if err == nil {
		// The parser reads to the end of the message; this only makes sure of it.
		_, err = io.Copy(io.Discard, in)
	}
	if err == nil {
		err = bw.Flush()
	}
	sp.file = sw.file
	if err != nil {
		return err
	}
	sp.size = in.cw.n
	if sp.file != nil {
		sp.data = sp.file.f
	} else {
		sp.data = bytes.NewReader(sw.buf.Bytes())
	}
	md.Text = p.ExtractText(sp.data)
	md.Preview = p.Preview(sp.data)
	sp.md = md
	return nil
}

// readBuffers are spoolReader's buffers for reading the source.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// spoolReader is what the parser reads: the octets of src, CRLF-normalised and held to the
// size limit by cw, each written to the spool as it is handed to the parser.
type spoolReader struct {
	src     io.Reader
	spool   io.Writer
	cw      crlfWriter // writes to the spoolReader itself (Write)
	pending bytes.Buffer
	buf     []byte
	err     error // the first error of src or cw; io.EOF at the end
}

// Write takes cw's output: into the spool, and into pending for the parser.
func (s *spoolReader) Write(p []byte) (int, error) {
	if _, err := s.spool.Write(p); err != nil {
		return 0, err
	}
	return s.pending.Write(p)
}

func (s *spoolReader) Read(p []byte) (int, error) {
	for s.pending.Len() == 0 {
		if s.err != nil {
			return 0, s.err
		}
		n, err := s.src.Read(s.buf)
		if n > 0 {
			if _, werr := s.cw.Write(s.buf[:n]); werr != nil {
				s.err = werr
				continue
			}
		}
		switch {
		case err == io.EOF:
			s.err = io.EOF
			if ferr := s.cw.finish(); ferr != nil {
				s.err = ferr
			}
		case err != nil:
			s.err = err
		}
	}
	return s.pending.Read(p)
}

// spoolWriter keeps what is written in memory up to spoolInMemory octets, then moves it
// to a spool file in dir and writes on there.
type spoolWriter struct {
	dir  string
	buf  bytes.Buffer
	file *spoolFile
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.file == nil && w.buf.Len()+len(p) <= spoolInMemory {
		return w.buf.Write(p)
	}
	if w.file == nil {
		f, err := createSpoolFile(w.dir)
		if err != nil {
			return 0, err
		}
		w.file = f
		if _, err := f.f.Write(w.buf.Bytes()); err != nil {
			return 0, err
		}
		w.buf = bytes.Buffer{}
	}
	return w.file.f.Write(p)
}

// spoolFile is a spool file in tmp/.
type spoolFile struct {
	f    *os.File
	name string // still to remove at close ("" once removed)
}

func createSpoolFile(dir string) (*spoolFile, error) {
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, err
	}
	sf := &spoolFile{f: f, name: f.Name()}
	if os.Remove(f.Name()) == nil {
		sf.name = ""
	}
	return sf, nil
}

// Close removes the spool file, if any.
func (sp *Spooled) Close() error {
	if sp.file == nil {
		return nil
	}
	err := sp.file.f.Close()
	if sp.file.name != "" {
		if rerr := os.Remove(sp.file.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		sp.file.name = ""
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("store: close spool: %w", err)
	}
	return nil
}

// Size is the size of the normalised message (without any Prepend).
func (sp *Spooled) Size() int64 { return sp.size }

// Envelope is the spooled message's envelope (for logging: Message-ID, From, Subject).
func (sp *Spooled) Envelope() Envelope { return sp.md.Envelope }

// DeliverSpooled stores a spooled message for one account, as Deliver does. Without a
// Prepend, every delivery of the same Spooled shares one stored body; with one, each
// delivery stores its own (prepend + message).
func (s *Store) DeliverSpooled(ctx context.Context, accountID int64, sp *Spooled, opts DeliverOptions) (Delivered, error) {
	// The size limit applied to the message as received (Spool); the prepended trace
	// header lines are ours and do not count against it.
	prepend := normalizePrepend(opts.Prepend)
	size := sp.size + int64(len(prepend))
	flags := parseFlags(opts.Flags)
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
		if err := wt.checkQuota(accountID, size, 1); err != nil {
			return err
		}
		bodyID, err := wt.spooledBody(sp, prepend, size)
		if err != nil {
			return err
		}
		if len(prepend) == 0 {
			newBody = bodyID
		}
		date := opts.InternalDate
		if date.IsZero() {
			date = wt.now()
		}
		unix, tz := splitDate(date)
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
		return wt.insertBody(sp.md, io.NewSectionReader(sp.data, 0, sp.size), size)
	}
	r := io.MultiReader(bytes.NewReader(prepend), io.NewSectionReader(sp.data, 0, sp.size))
	return wt.insertBody(sp.md.WithPrepend(prepend), r, size)
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
// is never read whole. It adds no line ending where the input has none: a message whose
// last line is unterminated is stored so, and its size and every section served are those
// octets (a POP3 RETR ends the line itself before its terminating dot, RFC 1939 §3).
type crlfWriter struct {
	w     io.Writer
	limit int64
	n     int64
	cr    bool // the last byte written was a CR whose LF is still due
	raw   bool // SpoolOptions.Binary: octets pass as they are, only counted
}

func (c *crlfWriter) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c.n+int64(len(b)) > c.limit {
		return fmt.Errorf("more than %d bytes: %w", c.limit, ErrTooBig)
	}
	c.n += int64(len(b))
	_, err := c.w.Write(b)
	return err
}

var crlf = []byte("\r\n")

func (c *crlfWriter) Write(p []byte) (int, error) {
	total := len(p)
	if c.raw {
		if err := c.emit(p); err != nil {
			return 0, err
		}
		return total, nil
	}
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

// finish completes a bare CR that ended the input, as CRLF: a line ending the input had.
func (c *crlfWriter) finish() error {
	if c.raw || !c.cr {
		return nil
	}
	c.cr = false
	return c.emit(crlf[1:])
}
