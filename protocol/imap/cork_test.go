package imap

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

// writeRecorder is a net.Conn that records each Write, failing from the failAt-th on.
type writeRecorder struct {
	net.Conn
	writes [][]byte
	failAt int
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if w.failAt > 0 && len(w.writes)+1 >= w.failAt {
		return 0, errors.New("broken pipe")
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestCorkCollectsWrites(t *testing.T) {
	rec := &writeRecorder{}
	c := newCorkConn(rec)
	c.Write([]byte("* OK before\r\n"))
	if len(rec.writes) != 1 {
		t.Fatalf("an uncorked write was held back: %d writes", len(rec.writes))
	}
	c.cork()
	var want bytes.Buffer
	for i := 0; i < 5000; i++ {
		line := []byte("* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n")
		want.Write(line)
		if n, err := c.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	big := bytes.Repeat([]byte("x"), 2*corkSize) // a large literal goes out as it is
	want.Write(big)
	c.Write(big)
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("T1 OK done\r\n"))
	want.WriteString("T1 OK done\r\n")

	got := bytes.Join(rec.writes[1:], nil)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the corked bytes changed: %d octets, want %d", len(got), want.Len())
	}
	// 5000 responses of 34 octets: 170,000 octets in 64 KiB writes, then the literal, the
	// rest and the tagged status.
	if n := len(rec.writes) - 1; n > 6 {
		t.Errorf("%d writes for 5000 corked responses", n)
	}
}

func TestCorkedWriteErrorSticks(t *testing.T) {
	rec := &writeRecorder{failAt: 1}
	c := newCorkConn(rec)
	c.cork()
	c.Write(bytes.Repeat([]byte("y"), corkSize-1))
	if _, err := c.Write([]byte("zz")); err == nil { // the flush fails
		t.Fatal("a failed flush was not reported")
	}
	if err := c.uncork(); err != nil {
		t.Errorf("uncork after the failure: %v (the failure is reported once, by Write)", err)
	}
	if _, err := c.Write([]byte("T1 OK done\r\n")); err == nil {
		t.Error("a write after a failed one went through: the client would get a tagged status after missing data")
	}
}
