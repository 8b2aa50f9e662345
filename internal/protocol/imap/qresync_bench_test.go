package imap

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkQresyncSelect is the resynchronisation docs/performance.md ("SORT, THREAD and
// QRESYNC at 10,000 messages") measures against Dovecot, over 10,000 messages: SELECT
// INBOX (QRESYNC (uidvalidity modseq)) after 10 flag changes since modseq, against
// BenchmarkFetchAllFlags, the FETCH 1:* (FLAGS) that a client without QRESYNC needs.
//
//	go test -tags sqlite_fts5 -run '^$' -bench 'Qresync|AllFlags' ./protocol/imap/
func BenchmarkQresyncSelect(b *testing.B) {
	addr := sortBenchServer(b, sortBenchMessages)
	c := qresyncBenchClient(b, addr)
	lines := c.runLines(b, "SELECT INBOX")
	validity, modseq := responseCode(b, lines, "UIDVALIDITY"), responseCode(b, lines, "HIGHESTMODSEQ")
	for i := range 10 {
		c.run(b, fmt.Sprintf("STORE %d +FLAGS.SILENT (\\Flagged)", 1+i*999))
	}
	cmd := fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d))", validity, modseq)
	for b.Loop() {
		c.read = 0
		c.run(b, cmd)
	}
	if c.read < 10*30 {
		b.Fatalf("%s: %d octets of answer, want at least the 10 changes", cmd, c.read)
	}
}

func BenchmarkFetchAllFlags(b *testing.B) {
	addr := sortBenchServer(b, sortBenchMessages)
	c := qresyncBenchClient(b, addr)
	c.run(b, "EXAMINE INBOX")
	for b.Loop() {
		c.read = 0
		c.run(b, "FETCH 1:* (FLAGS)")
	}
	if c.read < int64(sortBenchMessages)*20 {
		b.Fatalf("FETCH 1:* (FLAGS): %d octets of answer for %d messages", c.read, sortBenchMessages)
	}
}

func qresyncBenchClient(b *testing.B, addr string) *benchClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchClient{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	c.run(b, "")
	c.run(b, fmt.Sprintf("LOGIN %q %q", testUser, testPassword))
	c.run(b, "ENABLE QRESYNC")
	return c
}

func responseCode(b *testing.B, lines []string, code string) uint64 {
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, "["+code+" "); ok {
			n, err := strconv.ParseUint(rest[:strings.IndexByte(rest, ']')], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	b.Fatalf("no %s in %q", code, lines)
	return 0
}

// runLines sends command and returns its untagged response lines (no literals expected).
func (c *benchClient) runLines(b *testing.B, command string) []string {
	c.tag++
	tag := "B" + strconv.Itoa(c.tag)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, command); err != nil {
		b.Fatal(err)
	}
	var lines []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			b.Fatalf("%s: %v", command, err)
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				b.Fatalf("%s: %s", command, line)
			}
			return lines
		}
		lines = append(lines, line)
	}
}
