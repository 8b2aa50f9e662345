// Package mailimport reads mail that other programs left behind, for `letterbox import`:
// mbox files, Maildir directories and Dovecot's Maildir++ trees with their UID lists, one
// message at a time; and writes the same formats back for `letterbox export`.
//
// Implementation notes:
//
//   - Nothing is read into memory whole. An mbox message is a reader over the file that stops
//     at the next "From " separator line; a Maildir message is one file.
//   - mbox (RFC 4155, the mboxrd convention): a message starts at a "From " line at the start
//     of the file or after a blank line. The blank line before a separator (and the one at the
//     end of the file) belongs to the separator and is not part of the message. Lines matching
//     ^>+From  lose one '>' (mboxrd un-quoting). Line endings are left alone: the store
//     normalises them to CRLF.
//   - The date on the "From " line, when it parses (asctime form, UTC assumed), becomes the
//     message's INTERNALDATE.
//   - Maildir: messages in new/ and cur/ (tmp/ holds unfinished deliveries and is skipped),
//     ordered by the delivery timestamp that leads the file name, then by name, so that UIDs
//     follow the original delivery order. The ":2,FLAGS" suffix gives IMAP flags; Dovecot's
//     keyword letters (a-z) are resolved through its dovecot-keywords file when present. The
//     file's modification time becomes INTERNALDATE.
//   - Dovecot (dovecot.go): dovecot-uidlist (versions 1 to 3) gives UIDVALIDITY, the next UID
//     and each file's UID by its base name (the part before ":2,"); files it does not list
//     get the next UIDs in delivery order, as Dovecot would give them. Maildir++ folders are
//     the root's ".A.B" subdirectories, named "A/B", decoded from modified UTF-7.
//   - Export (export.go) writes what the import side reads: Maildir++ with dovecot-uidlist
//     and dovecot-keywords (messages with LF line ends, flags in the file name, INTERNALDATE
//     as the file time), and mboxrd with Status, X-Status and X-Keywords headers. An
//     export imported again is the same mail with the same UIDs (Maildir).
package mailimport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"time"
)

// ErrNotMbox is returned by MboxReader.Next when the input does not start with a "From " line.
var ErrNotMbox = errors.New("mailimport: not an mbox file (no \"From \" line at the start)")

// MboxMessage is one message of an mbox file. Body is valid until the next call to Next.
type MboxMessage struct {
	// Separator is the "From " line that introduced the message, without its line ending.
	Separator string
	// Date is the date on the separator line; zero if absent or unparseable.
	Date time.Time
	// Body streams the message, separator excluded, with mboxrd quoting removed.
	Body io.Reader
}

// MboxReader splits an mbox stream into messages.
type MboxReader struct {
	br      *bufio.Reader
	started bool
	next    string // separator line of the next message, already consumed; "" if none
	cur     *mboxBody
}

// NewMboxReader returns a reader of the messages in r.
func NewMboxReader(r io.Reader) *MboxReader {
	return &MboxReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next message, skipping whatever of the previous one was not read. It
// returns io.EOF after the last message, and ErrNotMbox if the input is not an mbox file.
func (m *MboxReader) Next() (*MboxMessage, error) {
	if m.cur != nil {
		if _, err := io.Copy(io.Discard, m.cur); err != nil {
			return nil, err
		}
		m.next, m.cur = m.cur.nextSeparator, nil
	}
	if !m.started {
		m.started = true
		sep, err := m.firstSeparator()
		if err != nil {
			return nil, err
		}
		m.next = sep
	}
	if m.next == "" {
		return nil, io.EOF
	}
	sep := m.next
	m.next = ""
	m.cur = &mboxBody{br: m.br, atStart: true}
	return &MboxMessage{Separator: sep, Date: separatorDate(sep), Body: m.cur}, nil
}

// firstSeparator skips leading blank lines and reads the first "From " line.
func (m *MboxReader) firstSeparator() (string, error) {
	for {
		line, err := readFullLine(m.br)
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return "", io.EOF // an empty file holds no messages
			}
			return "", err
		}
		if isBlank(line) {
			continue
		}
		if !bytes.HasPrefix(line, []byte("From ")) {
			return "", ErrNotMbox
		}
		return trimEOL(string(line)), nil
	}
}

// readFullLine reads one whole line, however long (a separator line is short; this is only
// used for separators).
func readFullLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		part, err := br.ReadSlice('\n')
		out = append(out, part...)
		if err != bufio.ErrBufferFull {
			return out, err
		}
	}
}

// mboxBody streams one message. It works line by line: a blank line is held back until the
// next line shows whether it is the blank line before a separator (dropped) or message text.
type mboxBody struct {
	br            *bufio.Reader
	atStart       bool   // the next byte read starts a line
	held          []byte // a blank line held back
	buf           []byte // output not yet returned
	scratch       []byte
	done          bool
	err           error
	nextSeparator string
}

func (b *mboxBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done {
			return 0, b.err
		}
		b.fill()
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// fill processes one line (or one buffer-full of a very long line).
func (b *mboxBody) fill() {
	line, err := b.br.ReadSlice('\n')
	if len(line) == 0 {
		b.done = true
		b.err = err
		if err == io.EOF || err == nil {
			b.err = io.EOF // the blank line held at the end of the file belongs to the file
		}
		return
	}
	complete := line[len(line)-1] == '\n'
	out := b.scratch[:0]
	if b.atStart {
		switch {
		case complete && isBlank(line):
			out = append(out, b.held...)
			b.held = append(b.held[:0], line...)
			b.buf, b.scratch = out, out
			return // still at the start of a line
		case b.held != nil && bytes.HasPrefix(line, []byte("From ")):
			// Copy the line before reading on: ReadSlice's result is overwritten by the
			// next read (a separator longer than the buffer lost its "From ").
			sep := string(line)
			if !complete {
				rest, _ := readFullLine(b.br)
				sep += string(rest)
			}
			b.nextSeparator = trimEOL(sep)
			b.done, b.err = true, io.EOF
			return
		case isQuotedFrom(line):
			line = line[1:] // mboxrd: >From -> From, >>From -> >From
		}
		out = append(out, b.held...)
		b.held = nil
	}
	out = append(out, line...)
	b.atStart = complete
	b.buf, b.scratch = out, out
	if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
		b.done, b.err = true, err
	}
}

func isBlank(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// isQuotedFrom matches ^>+From .
func isQuotedFrom(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(line[i:], []byte("From "))
}

func trimEOL(s string) string { return strings.TrimRight(s, "\r\n") }

// separatorLayouts are the date forms seen on "From " lines (asctime, sometimes with a zone).
var separatorLayouts = []string{
	"Mon Jan _2 15:04:05 2006",
	"Mon Jan _2 15:04:05 2006 -0700",
	"Mon Jan _2 15:04:05 MST 2006",
	"Mon Jan _2 15:04:05 -0700 2006",
	"Mon Jan _2 15:04 2006",
	"Mon, 2 Jan 2006 15:04:05 -0700",
}

// separatorDate parses the date of a "From sender date" line; zero if it does not parse.
func separatorDate(sep string) time.Time {
	fields := strings.Fields(strings.TrimPrefix(sep, "From "))
	if len(fields) < 2 {
		return time.Time{}
	}
	s := strings.Join(fields[1:], " ")
	for _, layout := range separatorLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
