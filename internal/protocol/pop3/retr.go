package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// cmdRetr handles RETR msg (RFC 1939 §5): the whole message, dot-stuffed.
func (s *session) cmdRetr(arg string) error {
	f, ok := s.args("RETR", arg, 1)
	if !ok {
		return nil
	}
	_, m := s.lookup(f[0])
	if m == nil {
		return nil
	}
	body := s.openMessage(m)
	if body == nil {
		return nil
	}
	defer body.Close()

	s.okReply(strconv.FormatInt(m.size, 10) + " octets")
	dw := newDotWriter(s.w)
	n, err := io.Copy(dw, body)
	s.retrievedBytes += n
	if err != nil {
		// The +OK is out; the client cannot be told otherwise. End the session so it sees
		// a truncated reply rather than a short message.
		return fmt.Errorf("RETR uid %d: %w", m.uid, err)
	}
	if err := dw.Close(); err != nil {
		return fmt.Errorf("RETR uid %d: %w", m.uid, err)
	}
	if n != m.size {
		s.log.Warn("pop3 RETR sent a size other than listed", "uid", m.uid, "listed", m.size, "sent", n)
	}
	if !m.retrieved {
		m.retrieved = true
		s.retrieved++
	}
	return nil
}

// cmdTop handles TOP msg n (RFC 1939 §7): the header, the blank line and the first n
// lines of the body, dot-stuffed. It does not count as retrieving the message.
func (s *session) cmdTop(arg string) error {
	f, ok := s.args("TOP", arg, 2)
	if !ok {
		return nil
	}
	lines, ok := parseNumber(f[1])
	if !ok {
		s.badReply("-ERR invalid number of lines")
		return nil
	}
	_, m := s.lookup(f[0])
	if m == nil {
		return nil
	}
	body := s.openMessage(m)
	if body == nil {
		return nil
	}
	defer body.Close()

	s.okReply("top of message follows")
	dw := newDotWriter(s.w)
	err := copyTop(dw, body, lines)
	if err != nil {
		return fmt.Errorf("TOP uid %d: %w", m.uid, err)
	}
	if err := dw.Close(); err != nil {
		return fmt.Errorf("TOP uid %d: %w", m.uid, err)
	}
	return nil
}

// openMessage opens a message before any +OK is sent, so that a message expunged
// meanwhile (over IMAP) can still be answered with -ERR; nil after such an answer.
func (s *session) openMessage(m *message) store.Body {
	body, err := s.srv.st.OpenMessage(s.ctx, s.mbox.ID, m.uid)
	switch {
	case err == nil:
		return body
	case errors.Is(err, store.ErrNoSuchMessage):
		s.errReply("-ERR message was removed")
	default:
		s.log.Error("pop3 cannot open message", "uid", m.uid, "err", err)
		s.errReply("-ERR [SYS/TEMP] cannot read the message, try again later")
	}
	return nil
}

// copyTop copies the header of a message, the blank line that ends it and then at most
// lines lines of its body (RFC 1939 §7 TOP). A message without a blank line is all
// header. Lines are streamed a buffer at a time, however long they are.
func copyTop(dst io.Writer, src io.Reader, lines int64) error {
	br := bufio.NewReaderSize(src, readBufferSize)
	inHeader, bol := true, true
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			eol := frag[len(frag)-1] == '\n'
			blank := bol && eol && (len(frag) == 1 || (len(frag) == 2 && frag[0] == '\r'))
			if _, werr := dst.Write(frag); werr != nil {
				return werr
			}
			switch {
			case inHeader && blank:
				inHeader = false
				if lines == 0 {
					return nil
				}
			case !inHeader && eol:
				if lines--; lines == 0 {
					return nil
				}
			}
			bol = eol
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// dotWriter writes a multi-line response body (RFC 1939 §3): a line that begins with
// "." gets another "." in front, and Close ends the body with ".", on a line of its
// own. The data is expected in CRLF form, as the store keeps messages.
type dotWriter struct {
	w   io.Writer
	bol bool  // at the beginning of a line
	n   int64 // octets of data written, before stuffing
}

func newDotWriter(w io.Writer) *dotWriter { return &dotWriter{w: w, bol: true} }

var dotStuff = []byte{'.'}

func (d *dotWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if d.bol && p[0] == '.' {
			if _, err := d.w.Write(dotStuff); err != nil {
				return written, err
			}
		}
		chunk := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			chunk = p[:i+1]
		}
		n, err := d.w.Write(chunk)
		written += n
		d.n += int64(n)
		if err != nil {
			return written, err
		}
		d.bol = chunk[len(chunk)-1] == '\n'
		p = p[len(chunk):]
	}
	return written, nil
}

// Close ends the body: a CRLF if the data did not end a line, then ".\r\n".
func (d *dotWriter) Close() error {
	if !d.bol {
		if _, err := io.WriteString(d.w, "\r\n"); err != nil {
			return err
		}
		d.bol = true
	}
	_, err := io.WriteString(d.w, ".\r\n")
	return err
}
