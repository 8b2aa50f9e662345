package mailimport

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The export side: what `letterbox export` writes, in the conventions the import side
// reads, so that an export imported again (by Letterbox or by Dovecot) is the same mail.

// MaildirFolderDir is the directory of folder name in a Maildir++ tree: the root for INBOX,
// else "." and the name's levels joined by "." in modified UTF-7. A "." inside a level,
// which Maildir++ would take for a level separator, is spelt as its modified UTF-7 form.
// A name with an empty level has no Maildir++ form.
func MaildirFolderDir(root, name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return root, nil
	}
	levels := strings.Split(name, "/")
	for i, l := range levels {
		if l == "" {
			return "", fmt.Errorf("mailimport: folder %q: an empty level has no Maildir++ name", name)
		}
		levels[i] = strings.ReplaceAll(EncodeMailboxName(l), ".", "&AC4-")
	}
	return filepath.Join(root, "."+strings.Join(levels, ".")), nil
}

// MaildirFolderWriter writes one folder of a Maildir++ tree with Dovecot's files beside
// the messages: dovecot-uidlist (version 3) keeps UIDVALIDITY, UIDs and the next UID, and
// dovecot-keywords the keywords named by the letters a-z in file names.
type MaildirFolderWriter struct {
	dir         string
	uidValidity uint32
	uidNext     uint32
	keywords    []string // index -> keyword, at most 26
	uidlist     bytes.Buffer
	// Dropped counts keywords that did not fit in the 26 letters of a file name.
	Dropped int
}

// NewMaildirFolder creates the Maildir (cur/ new/ tmp/) of folder name under root, which
// must not hold that folder yet.
func NewMaildirFolder(root, name string, uidValidity, uidNext uint32) (*MaildirFolderWriter, error) {
	dir, err := MaildirFolderDir(root, name)
	if err != nil {
		return nil, err
	}
	if IsMaildir(dir) {
		return nil, fmt.Errorf("mailimport: %s: a Maildir is already there", dir)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("mailimport: %w", err)
		}
	}
	if dir != root {
		// Maildir++ marks a folder (as opposed to the root) with this empty file.
		if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
			return nil, fmt.Errorf("mailimport: %w", err)
		}
	}
	return &MaildirFolderWriter{dir: dir, uidValidity: uidValidity, uidNext: uidNext}, nil
}

// Add writes one message into cur/, its flags in the file name's info (":2," and the
// letters in ASCII order, as the Maildir specification asks), dated date (the file's
// modification time, Dovecot's INTERNALDATE). write gets the message with CRLF line ends
// and stores it with LF ones, as Maildirs hold mail; size is the CRLF size (Dovecot's
// W=, its virtual size).
func (f *MaildirFolderWriter) Add(uid uint32, flags []string, date time.Time, size int64, write func(io.Writer) error) error {
	var info []byte
	for _, fl := range flags {
		if c := maildirLetter(fl); c != 0 {
			info = append(info, c)
			continue
		}
		if i := f.keywordIndex(fl); i >= 0 {
			info = append(info, byte('a'+i))
		} else {
			f.Dropped++
		}
	}
	slices.Sort(info)
	info = slices.Compact(info)
	tmp, err := os.CreateTemp(filepath.Join(f.dir, "tmp"), "export-*")
	if err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 64<<10)
	lf := &lfWriter{w: bw}
	err = write(lf)
	if err == nil {
		err = errors.Join(lf.flush(), bw.Flush(), tmp.Sync())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailimport: write message %d: %w", uid, err)
	}
	base := fmt.Sprintf("%d.U%dV%d.letterbox,S=%d,W=%d", date.Unix(), uid, f.uidValidity, lf.n, size)
	path := filepath.Join(f.dir, "cur", base+":2,"+string(info))
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	if err := os.Chtimes(path, date, date); err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	fmt.Fprintf(&f.uidlist, "%d W%d :%s\n", uid, size, base)
	f.uidNext = max(f.uidNext, uid+1)
	return nil
}

// Close writes dovecot-uidlist and dovecot-keywords.
func (f *MaildirFolderWriter) Close() error {
	guid := make([]byte, 16)
	rand.Read(guid)
	header := fmt.Sprintf("3 V%d N%d G%s\n", f.uidValidity, max(f.uidNext, 1), hex.EncodeToString(guid))
	var kw strings.Builder
	for i, k := range f.keywords {
		fmt.Fprintf(&kw, "%d %s\n", i, k)
	}
	return errors.Join(
		writeFileSynced(filepath.Join(f.dir, UIDListFile), append([]byte(header), f.uidlist.Bytes()...)),
		writeFileSynced(filepath.Join(f.dir, KeywordsFile), []byte(kw.String())),
	)
}

// keywordIndex is the letter index of keyword k in this folder, given one if it has none
// and a letter is free; -1 when all 26 are taken.
func (f *MaildirFolderWriter) keywordIndex(k string) int {
	for i, have := range f.keywords {
		if strings.EqualFold(have, k) {
			return i
		}
	}
	if len(f.keywords) == 26 || !isKeyword(k) {
		return -1
	}
	f.keywords = append(f.keywords, k)
	return len(f.keywords) - 1
}

// maildirLetter is the Maildir info letter of a system flag, 0 for a keyword.
func maildirLetter(flag string) byte {
	for c, f := range maildirFlags {
		if strings.EqualFold(f, flag) {
			return c
		}
	}
	return 0
}

func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	return nil
}

// lfWriter writes CRLF-terminated text with LF line ends, counting what it writes. A CR
// not followed by LF (which a stored message never has) is kept.
type lfWriter struct {
	w  io.Writer
	cr bool // a CR was held back at the end of the last write
	n  int64
}

func (l *lfWriter) Write(p []byte) (int, error) {
	total := len(p)
	var out []byte
	if l.cr {
		l.cr = false
		if len(p) == 0 || p[0] != '\n' {
			out = append(out, '\r')
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			out = append(out, p...)
			break
		}
		out = append(out, p[:i]...)
		switch {
		case i+1 == len(p):
			l.cr = true
		case p[i+1] != '\n':
			out = append(out, '\r')
		}
		p = p[i+1:]
	}
	n, err := l.w.Write(out)
	l.n += int64(n)
	if err != nil {
		return 0, err
	}
	return total, nil
}

func (l *lfWriter) flush() error {
	if !l.cr {
		return nil
	}
	l.cr = false
	n, err := l.w.Write([]byte{'\r'})
	l.n += int64(n)
	return err
}

// --- mbox ---

// Flag headers in mbox files, as Dovecot and mutt write them: Status (R read, O old),
// X-Status (A answered, F flagged, T draft, D deleted) and X-Keywords (space-separated).
var xStatusLetters = map[byte]string{'A': flagAnswered, 'F': flagFlagged, 'T': flagDraft, 'D': flagDeleted}

// MboxWriter writes messages to an mbox file in the mboxrd convention that NewMboxReader
// reads: a "From " line dated in UTC, the flag headers, the message with LF line ends and
// its lines matching ^>*From quoted with one more '>', then a blank line.
type MboxWriter struct {
	bw *bufio.Writer
}

// NewMboxWriter returns a writer of messages to w; Flush when done.
func NewMboxWriter(w io.Writer) *MboxWriter {
	return &MboxWriter{bw: bufio.NewWriterSize(w, 64<<10)}
}

// Add writes one message; write gets it with CRLF line ends.
func (m *MboxWriter) Add(flags []string, date time.Time, write func(io.Writer) error) error {
	fmt.Fprintf(m.bw, "From MAILER-DAEMON %s\n", date.UTC().Format("Mon Jan _2 15:04:05 2006"))
	m.bw.WriteString(MboxFlagHeaders(flags))
	q := &fromQuoter{w: m.bw, atStart: true}
	lf := &lfWriter{w: q}
	if err := write(lf); err != nil {
		return err
	}
	if err := errors.Join(lf.flush(), q.flush()); err != nil {
		return err
	}
	if !q.atStart {
		m.bw.WriteByte('\n')
	}
	_, err := m.bw.WriteString("\n")
	return err
}

// Flush writes what is buffered.
func (m *MboxWriter) Flush() error { return m.bw.Flush() }

// MboxFlagHeaders is the Status, X-Status and X-Keywords header lines (LF-terminated)
// for flags.
func MboxFlagHeaders(flags []string) string {
	status := "O"
	var xstatus, keywords []string
	for _, f := range flags {
		switch c := maildirLetter(f); {
		case strings.EqualFold(f, flagSeen):
			status = "RO"
		case c != 0:
			for l, name := range xStatusLetters {
				if name == maildirFlags[c] {
					xstatus = append(xstatus, string(l))
				}
			}
		case isKeyword(f):
			keywords = append(keywords, f)
		}
	}
	slices.Sort(xstatus)
	s := "Status: " + status + "\n"
	if len(xstatus) > 0 {
		s += "X-Status: " + strings.Join(xstatus, "") + "\n"
	}
	if len(keywords) > 0 {
		s += "X-Keywords: " + strings.Join(keywords, " ") + "\n"
	}
	return s
}

// fromQuoter adds a '>' before every line matching ^>*From (mboxrd).
type fromQuoter struct {
	w       *bufio.Writer
	atStart bool
	line    []byte // the start of a line, held until it shows whether it needs quoting
}

func (q *fromQuoter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if q.atStart || q.line != nil {
			// Collect enough of the line's start to decide.
			i := bytes.IndexByte(p, '\n')
			take := len(p)
			if i >= 0 {
				take = i + 1
			}
			q.line = append(q.line, p[:take]...)
			p = p[take:]
			q.atStart = false
			trimmed := bytes.TrimLeft(q.line, ">")
			complete := q.line[len(q.line)-1] == '\n'
			if !complete && len(trimmed) < len("From ") && bytes.HasPrefix([]byte("From "), trimmed) {
				continue // undecided yet
			}
			if bytes.HasPrefix(trimmed, []byte("From ")) {
				q.w.WriteByte('>')
			}
			if _, err := q.w.Write(q.line); err != nil {
				return 0, err
			}
			q.atStart, q.line = complete, nil
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := q.w.Write(p); err != nil {
				return 0, err
			}
			break
		}
		if _, err := q.w.Write(p[:i+1]); err != nil {
			return 0, err
		}
		p = p[i+1:]
		q.atStart = true
	}
	return total, nil
}

// flush writes a line start still held (a message ending in "Fro" without a newline).
func (q *fromQuoter) flush() error {
	_, err := q.w.Write(q.line)
	q.line = nil
	return err
}

// MboxFlags reads the flag headers (Status, X-Status, X-Keywords) of a message from an
// mbox file and returns the message without them and the flags they carry. Only the
// top-level header is looked at; a header longer than 1 MiB is left as it is.
func MboxFlags(r io.Reader) (io.Reader, []string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var header, kept []byte
	var flags []string
	drop := false
	for len(header) < 1<<20 {
		line, err := br.ReadBytes('\n')
		header = append(header, line...)
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !drop {
				kept = append(kept, line...)
			}
		} else if len(bytes.TrimRight(line, "\r\n")) == 0 {
			// The end of the header (or of the message).
			kept = append(kept, line...)
			return io.MultiReader(bytes.NewReader(kept), br), flags, nil
		} else {
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimSpace(value)
			drop = true
			switch strings.ToLower(string(bytes.TrimSpace(name))) {
			case "status":
				if bytes.IndexByte(value, 'R') >= 0 {
					flags = append(flags, flagSeen)
				}
			case "x-status":
				for _, c := range value {
					if f := xStatusLetters[c]; f != "" {
						flags = append(flags, f)
					}
				}
			case "x-keywords":
				for _, k := range strings.Fields(string(value)) {
					if isKeyword(k) {
						flags = append(flags, k)
					}
				}
			default:
				drop = false
				kept = append(kept, line...)
			}
		}
		if err == io.EOF {
			return bytes.NewReader(kept), flags, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return io.MultiReader(bytes.NewReader(header), br), nil, nil
}
