package imap

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
)

// BenchmarkAppendNagleClient appends one message at a time as Python's imaplib does with
// a socket as it comes: Nagle's algorithm on (Go's default is TCP_NODELAY, which hides the
// cost), the command line, "+", then the literal and its closing CRLF in two writes. Were
// the literal's ACK left to the kernel's delayed-ACK timer, the client would hold its CRLF
// back for up to 40 ms on every APPEND (quickack.go).
//
//	go test -run '^$' -bench AppendNagle -count 6 ./protocol/imap/
func BenchmarkAppendNagleClient(b *testing.B) {
	addr := benchServer(b, 0)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetNoDelay(false); err != nil {
		b.Fatal(err)
	}
	c := &benchClient{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	c.run(b, "") // the greeting
	c.run(b, fmt.Sprintf("LOGIN %q %q", testUser, testPassword))
	msg := benchcorpus.Corpus{Seed: 1}.Message(0)
	i := 0
	for b.Loop() {
		i++
		tag := fmt.Sprintf("A%d", i)
		fmt.Fprintf(conn, "%s APPEND INBOX {%d}\r\n", tag, len(msg))
		if l, err := c.br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
			b.Fatalf("APPEND: %q %v", l, err)
		}
		conn.Write(msg)
		conn.Write([]byte("\r\n"))
		for {
			l, err := c.br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					b.Fatalf("APPEND: %q", l)
				}
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/append")
}
