package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// chunkSize is the size of every body_chunks row but a body's last.
const chunkSize = 64 << 10

// OpenMessage streams a message of a mailbox by UID; ErrNoSuchMessage once it is expunged.
// The query that finds the message also reads its first chunk, so that a message of up to
// 64 KiB (nearly every one) costs one query.
func (s *Store) OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (Body, error) {
	var bodyID, size int64
	var first ownedBlob
	err := s.readers.QueryRowContext(ctx, `SELECT m.body_id, m.size, `+firstChunk+` FROM messages m
		WHERE m.mailbox_id = ? AND m.uid = ?`, mailboxID, uid).Scan(&bodyID, &size, &first)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("open message %d/%d", mailboxID, uid), noRows(err, ErrNoSuchMessage))
	}
	return newBody(s, bodyID, size, first), nil
}

// firstChunk is the column of the first chunk of the body of a messages row m. A
// correlated subquery: as a LEFT JOIN the same read cost half as much again.
const firstChunk = `(SELECT data FROM body_chunks WHERE body_id = m.body_id AND seq = 0)`

// MessageBody is a message with its stored raw message, opened.
type MessageBody struct {
	Message
	Body Body
}

// OpenMessages opens the messages of a mailbox whose UIDs fall in ranges (all when empty),
// in ascending UID order, with one query that also reads the first chunk of each: a FETCH
// of many bodies costs one query per batch instead of two per message. The caller closes
// each Body; it holds up to 64 KiB until then.
func (s *Store) OpenMessages(ctx context.Context, mailboxID int64, ranges ...UIDRange) ([]MessageBody, error) {
	cond, args, keep := uidRangeClause(ranges)
	chunk := firstChunk
	if keep != nil {
		// Many ranges: the query covers the span from the lowest to the highest UID and
		// the rows outside them are dropped here. Their chunks are not worth reading; the
		// bodies kept read theirs when they are read.
		chunk = "NULL"
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+prefixColumns("m.", messageColumns)+`, `+chunk+`
		FROM messages m WHERE m.mailbox_id = ? AND `+strings.ReplaceAll(cond, "uid", "m.uid")+` ORDER BY m.uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("open messages", err)
	}
	defer rows.Close()
	var out []MessageBody
	var first ownedBlob // the driver's own copy of each row's chunk (ownedBlob)
	scan := newMessageScan(&first)
	for rows.Next() {
		m, err := scan.scan(rows)
		if err != nil {
			return nil, wrapErr("open messages", err)
		}
		if keep == nil || keep(m.UID) {
			out = append(out, MessageBody{Message: m, Body: newBody(s, m.BodyID, m.Size, first)})
		}
	}
	return out, wrapErr("open messages", rows.Err())
}

// ownedBlob scans a BLOB column without copying it. database/sql copies a []byte it
// scans into a *[]byte (bytes.Clone) after the driver has already copied it out of
// SQLite's memory into a new Go slice (mattn/go-sqlite3 hands every BLOB out as C.GoBytes:
// fresh memory, never reused for a later row); for FETCH of many bodies that second copy
// and its allocation were a tenth of the server's time. database/sql's Scanner contract
// lets a driver reuse the slice; this driver does not, and TestOpenMessagesChunksKept
// checks that the chunks of a whole batch stay each its own message's.
type ownedBlob []byte

func (b *ownedBlob) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b = nil
	case []byte:
		*b = v
	default:
		return fmt.Errorf("store: scanning a BLOB: got %T", src)
	}
	return nil
}

// OpenBody streams a stored raw message by its BodyID.
func (s *Store) OpenBody(ctx context.Context, bodyID int64) (Body, error) {
	var size int64
	err := s.readers.QueryRowContext(ctx, `SELECT size FROM bodies WHERE id = ?`, bodyID).Scan(&size)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("open body %d", bodyID), noRows(err, ErrNoSuchMessage))
	}
	return newBody(s, bodyID, size, nil), nil
}

// newBody is a body whose first chunk is first, already read (nil: not read; the chunk
// row missing, as for an empty message, reads as not read).
func newBody(s *Store, id, size int64, first []byte) *body {
	b := &body{s: s, id: id, size: size, seq: -1}
	if first != nil && int64(len(first)) == min(chunkSize, size) {
		b.seq, b.buf = 0, first
	}
	return b
}

// body reads a stored message one chunk at a time, each with its own short query on the
// reader pool: no read transaction stays open while a slow client drains it, so it never
// holds back WAL checkpoints. The current chunk is cached for sequential reads. If the body
// is deleted meanwhile (the last message referring to it expunged), reading fails with
// ErrNoSuchMessage.
type body struct {
	s    *Store
	id   int64
	size int64

	mu     sync.Mutex
	off    int64 // for Read
	seq    int64 // chunk held in buf, -1 for none
	buf    []byte
	closed bool
}

func (b *body) Size() int64 { return b.size }

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.readAt(p, b.off)
	b.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // io.Reader: report EOF on the next call
	}
	return n, err
}

// ReadAt is safe for concurrent use, as io.ReaderAt requires.
func (b *body) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readAt(p, off)
}

func (b *body) readAt(p []byte, off int64) (int, error) {
	if b.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("store: body: negative offset")
	}
	n := 0
	for n < len(p) {
		if off >= b.size {
			return n, io.EOF
		}
		if err := b.load(off / chunkSize); err != nil {
			return n, err
		}
		c := copy(p[n:], b.buf[off%chunkSize:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// load fetches chunk seq into b.buf.
func (b *body) load(seq int64) error {
	if b.seq == seq {
		return nil
	}
	want := min(chunkSize, b.size-seq*chunkSize)
	b.buf = b.buf[:0]
	err := b.s.readers.QueryRowContext(context.Background(), `SELECT data FROM body_chunks WHERE body_id = ? AND seq = ?`, b.id, seq).
		Scan(&b.buf)
	b.seq = -1
	if err != nil {
		return wrapErr(fmt.Sprintf("read body %d chunk %d", b.id, seq), noRows(err, ErrNoSuchMessage))
	}
	if int64(len(b.buf)) != want {
		return fmt.Errorf("store: read body %d chunk %d: %d bytes, want %d", b.id, seq, len(b.buf), want)
	}
	b.seq = seq
	return nil
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.buf = nil
	return nil
}

// insertBody stores a raw message of size octets read from r, in chunks, with its
// metadata, and returns the new body's id.
func (wt *writeTx) insertBody(md *mailmsg.Parsed, r io.Reader, size int64) (int64, error) {
	env, structure, err := md.Encode()
	if err != nil {
		return 0, err
	}
	res, err := wt.exec(`INSERT INTO bodies (size, header_size, lines, envelope, structure, header, body_text, preview) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		size, md.HeaderSize, md.Lines, env, structure, md.Header, md.Text, md.Preview)
	if err != nil {
		return 0, fmt.Errorf("insert body: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if err := wt.insertSortKeys(id, md); err != nil {
		return 0, err
	}
	buf := make([]byte, chunkSize)
	var written int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := wt.exec(`INSERT INTO body_chunks (body_id, seq, data) VALUES (?, ?, ?)`, id, seq, buf[:n]); err != nil {
				return 0, fmt.Errorf("insert body chunk: %w", err)
			}
			written += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read spool: %w", err)
		}
	}
	if written != size {
		return 0, fmt.Errorf("insert body: wrote %d bytes, want %d", written, size)
	}
	return id, nil
}
