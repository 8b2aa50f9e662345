package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// chunkSize is the size of every body_chunks row but a body's last.
const chunkSize = 64 << 10

// OpenMessage streams a message of a mailbox by UID; ErrNoSuchMessage once it is expunged.
func (s *Store) OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (Body, error) {
	var bodyID, size int64
	err := s.r.QueryRowContext(ctx, `SELECT body_id, size FROM messages WHERE mailbox_id = ? AND uid = ?`, mailboxID, uid).
		Scan(&bodyID, &size)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("open message %d/%d", mailboxID, uid), noRows(err, ErrNoSuchMessage))
	}
	return &body{s: s, id: bodyID, size: size, seq: -1}, nil
}

// OpenBody streams a stored raw message by its BodyID.
func (s *Store) OpenBody(ctx context.Context, bodyID int64) (Body, error) {
	var size int64
	err := s.r.QueryRowContext(ctx, `SELECT size FROM bodies WHERE id = ?`, bodyID).Scan(&size)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("open body %d", bodyID), noRows(err, ErrNoSuchMessage))
	}
	return &body{s: s, id: bodyID, size: size, seq: -1}, nil
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
	err := b.s.r.QueryRowContext(context.Background(), `SELECT data FROM body_chunks WHERE body_id = ? AND seq = ?`, b.id, seq).
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
func (wt *writeTx) insertBody(md *parsed, r io.Reader, size int64) (int64, error) {
	env, structure, err := md.encode()
	if err != nil {
		return 0, err
	}
	res, err := wt.exec(`INSERT INTO bodies (size, header_size, lines, envelope, structure, header, body_text) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		size, md.headerSize, md.lines, env, structure, md.header, md.text)
	if err != nil {
		return 0, fmt.Errorf("insert body: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
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
