// Command letterbox-bench is a load generator for IMAP, POP3 and LMTP servers: it runs the
// workloads of docs/performance.md (APPEND, FETCH of metadata and bodies, SEARCH TEXT, POP3 download,
// LMTP delivery, IDLE fan-out and notification latency (also across the nodes of a
// cluster), a mixed multi-user load) against any server reachable by
// host and port, Letterbox or Dovecot alike, prints a table and writes JSON.
//
//	letterbox-bench --imap 127.0.0.1:1143 --pop3 127.0.0.1:1110 --lmtp 127.0.0.1:2424 \
//	    --user bench@example.test --password secret --messages 1000 --workload load,fetch-meta
//	letterbox-bench table letterbox.json dovecot-mdbox.json    # medians and ratios
//	letterbox-bench free-ports 3                               # for scripts
//
// Implementation notes:
//
//   - The clients are go-imap/v2's imapclient, go-smtp's LMTP client and a POP3 client of
//     its own (pop3.go), one command at a time as a plain mail client would send them.
//   - The corpus (corpus.go) is a pure function of (seed, index): ~4 KB messages, every fifth
//     multipart with a small attachment, every hundredth carrying the search word. Two
//     servers loaded with the same --messages and --seed hold the same bytes.
//   - Workloads that write (append, mixed) work in scratch mailboxes (bench-append,
//     bench-mixed) so that repetitions leave the mailbox of the read workloads unchanged;
//     lmtp and idle-fanout deliver to --deliver-to, which should be another user than the
//     one whose mailbox is measured.
//   - Bounded: every loop has a count (messages, repetitions, idlers) or a deadline (mixed's
//     duration; every repetition's --timeout, after which its connections are closed).
//     Only loopback servers are measured unless --allow-remote: a load generator pointed
//     at someone else's server by a typo is an attack.
//   - Timing covers the measured commands only (not connecting or logging in), except
//     pop3-download, which is a whole session by definition, and mixed, whose sessions are
//     the load.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "letterbox-bench:", err)
		os.Exit(1)
	}
}

// run is main without the process: testable.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "table":
			return tableCmd(args[1:], stdout)
		case "free-ports":
			return freePorts(args[1:], stdout)
		}
	}
	fs := flag.NewFlagSet("letterbox-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		b            = &Bench{Progress: stderr}
		user, pass   = fs.String("user", "", "user name to log in as"), fs.String("password", "", "password of --user")
		users        = fs.String("users", "", "users as u1:p1,u2:p2,... (instead of --user/--password); the first is measured, mixed uses all")
		list         = fs.String("workload", "append,append-nagle,fetch-meta,fetch-body,search-text,qresync,sort-date,sort-arrival,sort-expunge,thread-refs,pop3-download,lmtp,idle-fanout,mixed", "comma-separated workloads: "+workloadNames())
		reps         = fs.Int("reps", 3, "repetitions of each workload (min/median/max reported)")
		jsonFile     = fs.String("json", "", "write the results as JSON to this file")
		label        = fs.String("label", "server", "name of the server in the table and JSON (letterbox, dovecot-mdbox...)")
		deliverTo    = fs.String("deliver-to", "", "recipient of lmtp and idle-fanout, one of the users (default: the last)")
		timeout      = fs.Duration("timeout", 10*time.Minute, "limit of one repetition; its connections are closed when it passes")
		allowRemote  = fs.Bool("allow-remote", false, "allow servers that are not on a loopback address")
		tlsOn, start = fs.Bool("tls", false, "IMAP and POP3 over implicit TLS (certificates not verified)"), fs.Bool("starttls", false, "IMAP STARTTLS and POP3 STLS (certificates not verified)")
	)
	fs.StringVar(&b.IMAP, "imap", "127.0.0.1:1143", "IMAP host:port")
	fs.StringVar(&b.POP3, "pop3", "127.0.0.1:1110", "POP3 host:port")
	lmtpList := fs.String("lmtp", "127.0.0.1:2424", "LMTP host:port; or host:port,host:port,... (the nodes of a cluster): lmtp's senders take them in turn, idle-fanout delivers to the first")
	fs.StringVar(&b.Mailbox, "mailbox", "INBOX", "mailbox that load fills and the read workloads read")
	fs.IntVar(&b.Messages, "messages", 1000, "N: messages per load, append and lmtp repetition")
	fs.IntVar(&b.Concurrency, "concurrency", 4, "C: concurrent LMTP senders")
	fs.IntVar(&b.Idlers, "idlers", 20, "K: sessions in IDLE for idle-fanout and idle-latency")
	fs.StringVar(&b.IdleIMAP, "idle-imap", "", "IMAP host:port of idle-latency's idlers (another node of a cluster than the first --lmtp); default --imap")
	fs.IntVar(&b.IdleRounds, "idle-rounds", 5, "deliveries per idle-latency repetition, one after the other")
	fs.IntVar(&b.Clients, "clients", 8, "K: clients of the mixed load")
	fs.DurationVar(&b.Duration, "duration", 10*time.Second, "T: duration of one mixed repetition")
	fs.Int64Var(&b.Corpus.Seed, "seed", 1, "corpus seed")
	fs.IntVar(&b.ServerPID, "server-pid", 0, "PID of the server (Linux, same machine): idle-fanout then reports its memory growth (PSS of the process tree) per idle session; needs many idlers to rise above a garbage-collected heap's noise")
	fs.StringVar(&b.Corpus.Word, "word", benchcorpus.DefaultWord, "the word in 1 % of the corpus that search-text looks for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (subcommands: table, free-ports)", fs.Arg(0))
	}
	b.LMTPNodes = strings.Split(*lmtpList, ",")
	b.LMTP = b.LMTPNodes[0]
	b.Conn = connOptions{tls: *tlsOn, startTLS: *start, timeout: 10 * time.Second}
	if *tlsOn && *start {
		return errors.New("--tls and --starttls exclude each other")
	}
	var err error
	if b.Users, err = parseUsers(*users, *user, *pass); err != nil {
		return err
	}
	b.DeliverTo = len(b.Users) - 1
	if *deliverTo != "" {
		if b.DeliverTo = slices.IndexFunc(b.Users, func(c Credential) bool { return c.User == *deliverTo }); b.DeliverTo < 0 {
			return fmt.Errorf("--deliver-to %s: not one of the users (its password is needed for idle-fanout)", *deliverTo)
		}
	}
	if *reps < 1 || b.Messages < 0 || b.Idlers < 1 || b.Concurrency < 1 || b.Clients < 1 || b.IdleRounds < 1 {
		return errors.New("--reps, --idlers, --idle-rounds, --concurrency and --clients must be at least 1, --messages at least 0")
	}
	var todo []workload
	for name := range strings.SplitSeq(*list, ",") {
		w, ok := findWorkload(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown workload %q (known: %s)", name, workloadNames())
		}
		todo = append(todo, w)
	}
	for _, addr := range append([]string{b.IMAP, b.POP3, b.IdleIMAP}, b.LMTPNodes...) {
		if err := checkLoopback(addr, *allowRemote); err != nil {
			return err
		}
	}
	report := Report{Label: *label, Started: time.Now().UTC(), Machine: machine(), Params: params(b, *reps)}
	var failed error
	for _, w := range todo {
		res := Result{Workload: w.name, Label: *label, Unit: w.unit}
		for rep := range *reps {
			if w.name == "load" && rep > 0 {
				break // load fills the mailbox; a second time finds it full
			}
			fmt.Fprintf(stderr, "%s: %s %d/%d\n", *label, w.name, rep+1, *reps)
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			r, err := w.run(b, ctx, rep)
			cancel()
			if err != nil {
				r.Errors = max(r.Errors, 1)
				res.Error = err.Error()
				failed = cmp(failed, fmt.Errorf("%s: %w", w.name, err))
				fmt.Fprintf(stderr, "%s: %s: %v\n", *label, w.name, err)
			}
			res.Reps = append(res.Reps, r)
			if err != nil {
				break
			}
		}
		res.summarise()
		report.Results = append(report.Results, res)
	}
	printResults(stdout, report.Results)
	if *jsonFile != "" {
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonFile, err)
		}
	}
	return failed
}

func workloadNames() string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.name
	}
	return strings.Join(names, ", ")
}

// parseUsers reads --users u1:p1,u2:p2 or else --user/--password.
func parseUsers(list, user, pass string) ([]Credential, error) {
	var out []Credential
	if list != "" {
		for item := range strings.SplitSeq(list, ",") {
			u, p, ok := strings.Cut(item, ":")
			if !ok || u == "" {
				return nil, fmt.Errorf("--users: want user:password, got %q", item)
			}
			out = append(out, Credential{User: u, Password: p})
		}
		return out, nil
	}
	if user == "" {
		return nil, errors.New("no user: give --user and --password, or --users u1:p1,...")
	}
	return []Credential{{User: user, Password: pass}}, nil
}

// checkLoopback refuses an address whose host is not (or does not resolve only to) a
// loopback address, unless allowed.
func checkLoopback(addr string, allow bool) error {
	if allow || addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		if ips, err = net.LookupIP(host); err != nil {
			return fmt.Errorf("address %q: %w", addr, err)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("address %s is not loopback: refused without --allow-remote", addr)
		}
	}
	return nil
}

// Report is the JSON a run writes.
type Report struct {
	Label   string         `json:"label"`
	Started time.Time      `json:"started"`
	Machine Machine        `json:"machine"`
	Params  map[string]any `json:"params"`
	Results []Result       `json:"results"`
}

// Machine is where the run happened: the ratios hold for one machine and one run.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"model,omitempty"`
	Kernel string `json:"kernel,omitempty"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func params(b *Bench, reps int) map[string]any {
	return map[string]any{
		"messages": b.Messages, "concurrency": b.Concurrency, "idlers": b.Idlers,
		"clients": b.Clients, "idle_rounds": b.IdleRounds, "idle_imap": b.IdleIMAP, "duration": b.Duration.String(), "seed": b.Corpus.Seed,
		"reps": reps, "mailbox": b.Mailbox, "users": len(b.Users), "lmtp_nodes": len(b.LMTPNodes),
	}
}

// Result is one workload's repetitions and their summary (of Rep.Value, in Unit).
type Result struct {
	Workload     string   `json:"workload"`
	Label        string   `json:"label"`
	Unit         string   `json:"unit"`
	Reps         []Rep    `json:"reps"`
	Min          float64  `json:"min"`
	Median       float64  `json:"median"`
	Max          float64  `json:"max"`
	Latency      *Latency `json:"latency,omitempty"`        // idle-fanout, idle-latency: medians over the repetitions
	KBPerSession float64  `json:"kb_per_session,omitempty"` // idle-fanout with --server-pid: median
	Ratio        float64  `json:"ratio,omitempty"`          // qresync: median of resync / FETCH 1:* (FLAGS)
	Errors       int      `json:"errors"`
	Error        string   `json:"error,omitempty"`
}

func (r *Result) summarise() {
	var vals, p50, p99, pmax, kb, ratio []float64
	r.Errors = 0
	for _, rep := range r.Reps {
		r.Errors += rep.Errors
		vals = append(vals, rep.Value)
		if rep.KBPerSession != 0 {
			kb = append(kb, rep.KBPerSession)
		}
		if rep.Ratio != 0 {
			ratio = append(ratio, rep.Ratio)
		}
		if rep.Latency != nil {
			p50, p99, pmax = append(p50, rep.Latency.P50), append(p99, rep.Latency.P99), append(pmax, rep.Latency.Max)
		}
	}
	if len(vals) == 0 {
		return
	}
	r.Min, r.Median, r.Max = slices.Min(vals), median(vals), slices.Max(vals)
	if len(p50) > 0 {
		r.Latency = &Latency{P50: median(p50), P99: median(p99), Max: median(pmax)}
	}
	if len(kb) > 0 {
		r.KBPerSession = median(kb)
	}
	if len(ratio) > 0 {
		r.Ratio = median(ratio)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printResults writes one line per workload: min/median/max of its value, and what was
// counted.
func printResults(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tworkload\treps\tmin\tmedian\tmax\tcount\terrors\tnotes")
	for _, r := range results {
		count := 0
		var size int64
		if len(r.Reps) > 0 {
			count, size = r.Reps[len(r.Reps)-1].Count, r.Reps[len(r.Reps)-1].Bytes
		}
		var notes []string
		if size > 0 {
			notes = append(notes, fmt.Sprintf("%.1f MB", float64(size)/1e6))
		}
		if r.Latency != nil {
			notes = append(notes, fmt.Sprintf("latency p50 %s p99 %s max %s", fmtValue(r.Latency.P50, "s"), fmtValue(r.Latency.P99, "s"), fmtValue(r.Latency.Max, "s")))
		}
		if r.KBPerSession != 0 {
			notes = append(notes, fmt.Sprintf("server memory %.0f KB per idle session", r.KBPerSession))
		}
		if r.Ratio != 0 {
			notes = append(notes, fmt.Sprintf("%.1f%% of FETCH 1:* (FLAGS)", 100*r.Ratio))
		}
		if r.Error != "" {
			notes = append(notes, "error: "+r.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Label, r.Workload, len(r.Reps),
			fmtValue(r.Min, r.Unit), fmtValue(r.Median, r.Unit), fmtValue(r.Max, r.Unit), count, r.Errors, strings.Join(notes, "; "))
	}
	tw.Flush()
}

func fmtValue(v float64, unit string) string {
	if unit == "ops/s" {
		return fmt.Sprintf("%.0f ops/s", v)
	}
	switch {
	case v < 0.01:
		return fmt.Sprintf("%.2f ms", v*1000)
	case v < 1:
		return fmt.Sprintf("%.1f ms", v*1000)
	default:
		return fmt.Sprintf("%.2f s", v)
	}
}

// freePorts prints n free loopback TCP ports, one a line (all held open until all are
// found, so that they differ).
func freePorts(args []string, w io.Writer) error {
	n := 1
	if len(args) > 0 {
		if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 || n > 100 {
			return fmt.Errorf("free-ports: want a count from 1 to 100, got %q", args[0])
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Fprintln(w, l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
