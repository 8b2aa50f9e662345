package pop3

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/benchmetric"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// BenchmarkDownload is a whole POP3 download session over loopback: USER, PASS, STAT,
// UIDL, RETR of every message (about 4 KB each), QUIT; what `letterbox-bench --workload
// pop3-download` measures. Compare runs with benchstat (go test -bench Download -count 6).
// Its time is mostly round trips, which a busy machine stretches; cpu-ns/msg, the process's
// CPU time (client and server) per message, moves less.
func BenchmarkDownload(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	st, err := store.Open(b.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	acct, err := st.CreateAccount(ctx, store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		b.Fatal(err)
	}
	line := strings.Repeat("lorem ipsum dolor sit amet ", 2) + "\r\n"
	for i := range n {
		msg := fmt.Sprintf("From: <sender%d@bench.example>\r\nSubject: message %d\r\n\r\n%s", i%37, i, strings.Repeat(line, 70))
		if _, err := st.Deliver(ctx, acct.ID, strings.NewReader(msg), store.DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	opts := DefaultOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Auth = &auth.Authenticator{Store: st}
	srv := newServer(st, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)

	cpu0 := benchmetric.CPUTime()
	for b.Loop() {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReaderSize(conn, 64<<10)
		// reply sends a command (none for the greeting) and reads its reply, to the final
		// "." of a multi-line one.
		reply := func(command string, multi bool) {
			if command != "" {
				if _, err := io.WriteString(conn, command+"\r\n"); err != nil {
					b.Fatal(err)
				}
			}
			for first := true; ; first = false {
				l, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatalf("%s: %v", command, err)
				}
				if first && !strings.HasPrefix(string(l), "+OK") {
					b.Fatalf("%s: %s", command, l)
				}
				if !multi || string(l) == ".\r\n" {
					return
				}
			}
		}
		reply("", false)
		reply("USER "+testUser, false)
		reply("PASS "+testPassword, false)
		reply("STAT", false)
		reply("UIDL", true)
		for i := 1; i <= n; i++ {
			reply(fmt.Sprint("RETR ", i), true)
		}
		reply("QUIT", false)
		conn.Close()
	}
	benchmetric.ReportPerMessage(b, b.N*n, cpu0)
}
