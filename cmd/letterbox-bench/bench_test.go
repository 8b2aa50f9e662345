package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/pkg/letterboxtest"
)

// startServer is an in-process Letterbox with a measured user (bench) and a recipient of
// deliveries (sink), and a Bench pointed at it with tiny sizes.
func startServer(t *testing.T) (*letterboxtest.Server, *Bench) {
	t.Helper()
	srv := letterboxtest.Start(t, letterboxtest.WithConfig(func(c *config.Config) {
		c.Limits.MaxUserIPConnections = 100
	}))
	srv.AddUser("bench@example.test", "secret")
	srv.AddUser("sink@example.test", "secret")
	b := &Bench{
		IMAP: srv.IMAPAddr(), POP3: srv.POP3Addr(), LMTP: srv.LMTPAddr(),
		Users:    []Credential{{"bench@example.test", "secret"}, {"sink@example.test", "secret"}},
		Conn:     connOptions{timeout: 5 * time.Second},
		Mailbox:  "INBOX",
		Messages: 20, Concurrency: 3, Idlers: 3, Clients: 2, Duration: 300 * time.Millisecond,
		Corpus:    benchcorpus.Corpus{Seed: 1, Word: benchcorpus.DefaultWord},
		DeliverTo: 1,
	}
	return srv, b
}

func runOne(t *testing.T, b *Bench, name string) Rep {
	t.Helper()
	w, ok := findWorkload(name)
	if !ok {
		t.Fatalf("no workload %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := w.run(b, ctx, 0)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if rep.Errors != 0 {
		t.Errorf("%s: %d errors", name, rep.Errors)
	}
	return rep
}

func TestWorkloadsAgainstLetterbox(t *testing.T) {
	srv, b := startServer(t)
	b.Messages = 120 // two messages with the search word: 7 and 107

	load := runOne(t, b, "load")
	if load.Count != 120 || load.Seconds <= 0 {
		t.Fatalf("load: %+v", load)
	}
	inbox := srv.Mailbox("bench@example.test", "INBOX")
	if len(inbox.Messages) != 120 {
		t.Fatalf("INBOX has %d messages after load, want 120", len(inbox.Messages))
	}
	if again := runOne(t, b, "load"); again.Count != 0 {
		t.Errorf("second load appended %d messages to a full mailbox", again.Count)
	}
	corpusBytes := corpusBytesOf(b, 120)

	b.Messages = 20
	app := runOne(t, b, "append")
	if app.Count != 20 || app.Seconds <= 0 {
		t.Errorf("append: %+v", app)
	}
	for _, mb := range []string{scratchMailbox} {
		if got := srv.Mailbox("bench@example.test", "INBOX"); len(got.Messages) != 120 {
			t.Errorf("append changed INBOX (%d messages) instead of %s", len(got.Messages), mb)
		}
	}

	nagle := runOne(t, b, "append-nagle")
	if nagle.Count != 20 || nagle.Seconds <= 0 || nagle.Bytes != corpusBytesOf(b, 20) {
		t.Errorf("append-nagle: %+v", nagle)
	}
	if got := srv.Mailbox("bench@example.test", "INBOX"); len(got.Messages) != 120 {
		t.Errorf("append-nagle changed INBOX (%d messages) instead of %s", len(got.Messages), scratchMailbox)
	}

	meta := runOne(t, b, "fetch-meta")
	if meta.Count != 120 || meta.Bytes != corpusBytes || meta.Seconds <= 0 {
		t.Errorf("fetch-meta: %+v, want 120 messages of %d bytes in all", meta, corpusBytes)
	}
	body := runOne(t, b, "fetch-body")
	if body.Count != 120 || body.Bytes != corpusBytes {
		t.Errorf("fetch-body: %+v, want 120 messages, %d bytes", body, corpusBytes)
	}
	if got := srv.Mailbox("bench@example.test", "INBOX"); got.Messages[0].HasFlag(`\Seen`) {
		t.Errorf("fetch-body set \\Seen: it must PEEK")
	}
	search := runOne(t, b, "search-text")
	if search.Count != benchcorpus.Hits(120) || search.Count != 2 {
		t.Errorf("search-text found %d messages, want %d", search.Count, benchcorpus.Hits(120))
	}
	for rep := range 2 { // +FLAGS then -FLAGS: each repetition changes the 10 messages
		w, _ := findWorkload("qresync")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		qr, err := w.run(b, ctx, rep)
		cancel()
		if err != nil {
			t.Fatalf("qresync rep %d: %v", rep, err)
		}
		if qr.Count < 10 || qr.FullSeconds <= 0 || qr.Ratio <= 0 {
			t.Errorf("qresync rep %d: %+v, want at least the 10 changed messages resynchronised", rep, qr)
		}
		flagged := 0
		for _, m := range srv.Mailbox("bench@example.test", "INBOX").Messages {
			if m.HasFlag(`\Flagged`) {
				flagged++
			}
		}
		if want := []int{10, 0}[rep]; flagged != want {
			t.Errorf("after qresync rep %d, %d messages are \\Flagged, want %d", rep, flagged, want)
		}
	}
	for _, name := range []string{"sort-date", "thread-refs"} {
		if r := runOne(t, b, name); r.Count != 120 {
			t.Errorf("%s: %+v, want all 120 messages in the answer", name, r)
		}
	}
	// sort-arrival appends one message before it sorts: the answer names it too.
	if r := runOne(t, b, "sort-arrival"); r.Count != 121 || len(srv.Mailbox("bench@example.test", "INBOX").Messages) != 121 {
		t.Errorf("sort-arrival: %+v, want the 121 messages after its APPEND in the answer", r)
	}
	// sort-expunge expunges the first message before it sorts.
	if r := runOne(t, b, "sort-expunge"); r.Count != 120 || len(srv.Mailbox("bench@example.test", "INBOX").Messages) != 120 {
		t.Errorf("sort-expunge: %+v, want the 120 messages after its EXPUNGE in the answer", r)
	}
	pop := runOne(t, b, "pop3-download")
	if pop.Count != 120 || pop.Bytes < corpusBytes-corpusBytesOf(b, 1) || pop.Seconds <= 0 {
		t.Errorf("pop3-download: %+v, want 120 messages (one expunged, one appended by the sort workloads) of about %d bytes", pop, corpusBytes)
	}

	lm := runOne(t, b, "lmtp")
	if lm.Count != 20 {
		t.Errorf("lmtp: %+v", lm)
	}
	if got := srv.Mailbox("sink@example.test", "INBOX"); len(got.Messages) != 20 {
		t.Errorf("sink has %d messages after lmtp, want 20", len(got.Messages))
	}

	idle := runOne(t, b, "idle-fanout")
	if idle.Count != 3 || idle.Latency == nil || idle.Latency.P50 <= 0 || idle.Latency.Max < idle.Latency.P99 || idle.Latency.P99 < idle.Latency.P50 {
		t.Errorf("idle-fanout: %+v %+v", idle, idle.Latency)
	}

	// idle-latency: 3 idlers × 2 deliveries, each delivery heard by every idler.
	b.IdleRounds = 2
	lat := runOne(t, b, "idle-latency")
	if lat.Count != 6 || lat.Latency == nil || lat.Latency.Max < lat.Latency.P99 || lat.Latency.P99 < lat.Latency.P50 {
		t.Errorf("idle-latency: %+v %+v", lat, lat.Latency)
	}
	if got := srv.Mailbox("sink@example.test", "INBOX"); len(got.Messages) != 20+1+2 {
		t.Errorf("sink has %d messages after idle-fanout and idle-latency, want 23", len(got.Messages))
	}

	mixed := runOne(t, b, "mixed")
	if mixed.Count == 0 || mixed.OpsPerSec <= 0 {
		t.Errorf("mixed: %+v", mixed)
	}
	if mixed.Count%8 != 0 {
		t.Errorf("mixed counted %d commands: not whole sessions of 8", mixed.Count)
	}
	// Every appended message was expunged again: only the 10 seed messages remain.
	for _, u := range []string{"bench@example.test", "sink@example.test"} {
		if got := srv.Mailbox(u, mixedMailbox); len(got.Messages) != 10 {
			t.Errorf("%s %s has %d messages after mixed, want the 10 it started with", u, mixedMailbox, len(got.Messages))
		}
	}
}

func TestRunWritesJSONAndTable(t *testing.T) {
	_, b := startServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "lb.json")
	args := []string{"--imap", b.IMAP, "--pop3", b.POP3, "--lmtp", b.LMTP,
		"--users", "bench@example.test:secret,sink@example.test:secret",
		"--messages", "10", "--reps", "3", "--workload", "load,fetch-meta,search-text",
		"--label", "letterbox", "--json", file}
	var out, errOut bytes.Buffer
	if err := run(args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "fetch-meta") || !strings.Contains(errOut.String(), "fetch-meta 3/3") {
		t.Errorf("table or progress missing:\n%s\n%s", out.String(), errOut.String())
	}
	var rep Report
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 || len(rep.Results[0].Reps) != 1 || len(rep.Results[1].Reps) != 3 {
		t.Fatalf("results: %+v", rep.Results)
	}
	fm := rep.Results[1]
	if fm.Min > fm.Median || fm.Median > fm.Max || fm.Min <= 0 {
		t.Errorf("fetch-meta summary min %v median %v max %v", fm.Min, fm.Median, fm.Max)
	}

	// The same report under another label: the ratio column of the table is 1.
	other := strings.Replace(string(data), `"letterbox"`, `"other"`, -1)
	file2 := filepath.Join(dir, "other.json")
	os.WriteFile(file2, []byte(other), 0o644)
	out.Reset()
	if err := run([]string{"table", file, file2}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| workload | letterbox | other | letterbox/other |") ||
		!strings.Contains(out.String(), " | 1.00 |") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestRefusesRemoteHosts(t *testing.T) {
	for _, addr := range []string{"192.0.2.1:143", "[2001:db8::1]:143"} {
		if err := checkLoopback(addr, false); err == nil {
			t.Errorf("%s accepted without --allow-remote", addr)
		}
		if err := checkLoopback(addr, true); err != nil {
			t.Errorf("%s refused with --allow-remote: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:143", "[::1]:143", "127.0.0.2:1"} {
		if err := checkLoopback(addr, false); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	err := run([]string{"--imap", "192.0.2.1:143", "--user", "u"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("run against a remote host: %v", err)
	}
}

func TestServerMemory(t *testing.T) {
	kb, err := processTreePSS(os.Getpid())
	if err != nil {
		t.Skipf("no /proc PSS here: %v", err)
	}
	if kb <= 0 {
		t.Errorf("PSS of this process: %d kB", kb)
	}
	// The in-process server is this process: idle-fanout measures it without error.
	_, b := startServer(t)
	b.ServerPID = os.Getpid()
	if rep := runOne(t, b, "idle-fanout"); rep.Count != 3 {
		t.Errorf("idle-fanout with --server-pid: %+v", rep)
	}
	if _, err := processTreePSS(1 << 30); err == nil {
		t.Error("PSS of a process that does not exist")
	}
}

// corpusBytesOf is the size of the first n corpus messages.
func corpusBytesOf(b *Bench, n int) int64 {
	var total int64
	for i := range n {
		total += int64(len(b.Corpus.Message(i)))
	}
	return total
}

// With several LMTP addresses (a cluster's nodes) the lmtp workload's senders take them in
// turn: here two separate servers, which between them hold every message, each an equal
// share (4 senders, 2 each).
func TestLMTPSpreadsOverNodes(t *testing.T) {
	a, b := startServer(t)
	other, _ := startServer(t)
	b.LMTPNodes = []string{a.LMTPAddr(), other.LMTPAddr()}
	b.Concurrency, b.Messages = 4, 40
	rep := runOne(t, b, "lmtp")
	if rep.Count != 40 {
		t.Fatalf("lmtp delivered %d, want 40", rep.Count)
	}
	na := len(a.Mailbox("sink@example.test", "INBOX").Messages)
	nb := len(other.Mailbox("sink@example.test", "INBOX").Messages)
	if na+nb != 40 || na == 0 || nb == 0 {
		t.Fatalf("the nodes hold %d and %d messages, want 40 between them, some on each", na, nb)
	}
}

// Runs of one server alternated with another's, one file per run: the table's cell is the
// median of all their repetitions, not the last file's.
func TestTableMergesRepetitionsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, label string, values ...float64) string {
		res := Result{Workload: "lmtp", Label: label, Unit: "s"}
		for _, v := range values {
			res.Reps = append(res.Reps, Rep{Value: v, Count: 1})
		}
		res.summarise()
		data, err := json.Marshal(Report{Label: label, Results: []Result{res}})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	files := []string{
		write("a1.json", "one-node", 1), write("b1.json", "two-nodes", 4),
		write("a2.json", "one-node", 3), write("b2.json", "two-nodes", 2),
		write("a3.json", "one-node", 2),
	}
	var out bytes.Buffer
	if err := tableCmd(files, &out); err != nil {
		t.Fatal(err)
	}
	// one-node: median of 1, 3, 2 is 2 s; two-nodes: of 4 and 2 is 3 s; ratio 0.67.
	if !strings.Contains(out.String(), "| lmtp | 2.00 s | 3.00 s | 0.67 |") {
		t.Errorf("table:\n%s", out.String())
	}
}
