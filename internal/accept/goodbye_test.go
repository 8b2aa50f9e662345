package accept

import (
	"io"
	"net"
	"testing"
	"time"
)

// A client that sends more after its last command (a pipelined command, a compressor's
// flush marker) and reads the server's goodbye only later must still read all of it and
// then a clean EOF: a plain Close of a socket with input unread answers with a reset, which
// fails the client's read (here after the goodbye; a client that had not read it yet may
// lose it). With c.Close() in place of CloseAfterGoodbye this test fails so.
func TestCloseAfterGoodbyeNoReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		buf := make([]byte, 64)
		c.Read(buf)                        // the client's last command
		time.Sleep(100 * time.Millisecond) // meanwhile more arrives, unread
		c.Write([]byte("* BYE Logging out\r\nA1 OK LOGOUT completed\r\n"))
		closed <- CloseAfterGoodbye(c)
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("A1 LOGOUT\r\n"))
	time.Sleep(20 * time.Millisecond)  // the server has read it
	c.Write([]byte("A2 NOOP\r\n"))     // arrives after the server's last read
	time.Sleep(200 * time.Millisecond) // a reset, if the server sent one, has arrived
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the goodbye: %v (after %q)", err, got)
	}
	if string(got) != "* BYE Logging out\r\nA1 OK LOGOUT completed\r\n" {
		t.Errorf("read %q", got)
	}
	c.Close()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("CloseAfterGoodbye: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CloseAfterGoodbye did not return after the client closed")
	}
}
