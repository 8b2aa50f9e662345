package imap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
	"github.com/letterbox-mail/letterbox/internal/benchmetric"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// The FETCH benchmarks drive a real server over loopback, as a client that reads every
// response (literals included) to the tagged OK: what `letterbox-bench --workload
// fetch-meta,fetch-body` measures, without the client's parsing. Run them with
//
//	go test -run '^$' -bench Fetch -count 6 ./protocol/imap/ | tee new.txt; benchstat old.txt new.txt

const benchMessages = 1000

func BenchmarkFetchMetadata(b *testing.B) {
	benchmarkFetch(b, "UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)")
}

func BenchmarkFetchBodies(b *testing.B) {
	benchmarkFetch(b, "UID FETCH 1:* (BODY.PEEK[])")
}

func benchmarkFetch(b *testing.B, command string) {
	addr := benchServer(b, benchMessages)
	c := selectedBenchClient(b, addr)
	var bytes int64
	cpu0 := benchmetric.CPUTime()
	for b.Loop() {
		if n := c.run(b, command); n != benchMessages {
			b.Fatalf("%d FETCH responses, want %d", n, benchMessages)
		}
		bytes = c.read
		c.read = 0
	}
	b.SetBytes(bytes)
	benchmetric.ReportPerMessage(b, b.N*benchMessages, cpu0)
}

// benchServer starts a server on a store whose INBOX holds n messages of about 4 KB, every
// fifth multipart with an attachment (the shape of letterbox-bench's corpus).
func benchServer(b *testing.B, n int) string {
	b.Helper()
	st, acct := benchStore(b)
	for i := range n {
		if _, err := st.Deliver(context.Background(), acct.ID, strings.NewReader(string(benchcorpus.Corpus{Seed: 1}.Message(i))), store.DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return serveBench(b, st)
}

// benchStore is an empty store in a temporary directory with the test user's account.
func benchStore(b *testing.B) (*store.Store, store.Account) {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	acct, err := st.CreateAccount(context.Background(), store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		b.Fatal(err)
	}
	return st, acct
}

// serveBench serves st on a free loopback port until the benchmark ends, and returns the
// address.
func serveBench(b *testing.B, st *store.Store) string {
	b.Helper()
	srv := newServer(st, Options{Auth: &auth.Authenticator{Store: st}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// benchClient sends one command at a time and reads its responses.
type benchClient struct {
	conn net.Conn
	br   *bufio.Reader
	tag  int
	read int64 // octets received
}

// run sends command (none for the greeting) and reads up to its tagged OK; it returns the
// number of untagged FETCH responses.
// selectedBenchClient connects to addr, logs in and selects INBOX; the connection is
// closed when the benchmark ends.
func selectedBenchClient(b *testing.B, addr string) *benchClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchClient{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	c.run(b, "") // the greeting
	c.run(b, fmt.Sprintf("LOGIN %q %q", testUser, testPassword))
	c.run(b, "SELECT INBOX")
	return c
}

func (c *benchClient) run(b *testing.B, command string) int {
	tag := "*"
	if command != "" {
		c.tag++
		tag = "B" + strconv.Itoa(c.tag)
		if _, err := io.WriteString(c.conn, tag+" "+command+"\r\n"); err != nil {
			b.Fatal(err)
		}
	}
	fetches := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			b.Fatalf("%s: %v", command, err)
		}
		c.read += int64(len(line))
		s := string(line)
		if strings.HasPrefix(s, "* ") && strings.Contains(s, " FETCH (") {
			fetches++
		}
		if strings.HasSuffix(s, "}\r\n") {
			open := strings.LastIndexByte(s, '{')
			n, err := strconv.Atoi(strings.TrimSuffix(s[open+1:len(s)-3], "+"))
			if err != nil {
				b.Fatalf("literal in %q: %v", line, err)
			}
			if _, err := c.br.Discard(n); err != nil {
				b.Fatal(err)
			}
			c.read += int64(n)
			continue // the response goes on after the literal
		}
		if strings.HasPrefix(s, tag+" ") {
			if tag != "*" && !strings.HasPrefix(s, tag+" OK") {
				b.Fatalf("%s: %s", command, s)
			}
			return fetches
		}
	}
}
