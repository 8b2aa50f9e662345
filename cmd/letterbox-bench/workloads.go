package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
	"github.com/letterbox-mail/letterbox/internal/benchcorpus"
)

// Credential is one account the benchmark logs in as.
type Credential struct {
	User, Password string
}

// connOptions say how to connect: plain, implicit TLS, or STARTTLS/STLS.
type connOptions struct {
	tls, startTLS bool
	timeout       time.Duration // dial timeout
}

// tlsConfig accepts any certificate: the benchmark talks to loopback servers with
// self-signed certificates, and measures, it does not authenticate.
func (o connOptions) tlsConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback benchmark only
}

// Bench is one configured run: where the servers are, who logs in, and the sizes.
type Bench struct {
	IMAP, POP3, LMTP string
	// LMTPNodes are the LMTP addresses the lmtp workload's senders spread over, in turn
	// (sender i to LMTPNodes[i % len]): several nodes of one cluster. Empty: LMTP alone.
	// idle-fanout delivers to LMTP, the first.
	LMTPNodes   []string
	Users       []Credential
	Conn        connOptions
	Mailbox     string // the mailbox the read workloads read (INBOX)
	Messages    int    // N: messages per append/load/lmtp repetition
	Concurrency int    // C: concurrent LMTP senders
	Idlers      int    // K: idle-fanout and idle-latency sessions
	// IdleIMAP is where idle-latency's idlers connect (another node of a cluster than the
	// LMTP one); empty: IMAP. IdleRounds is its deliveries per repetition.
	IdleIMAP   string
	IdleRounds int
	Clients    int           // K: mixed-load clients
	Duration   time.Duration // T: mixed-load duration
	Corpus     benchcorpus.Corpus
	DeliverTo  int // index in Users of the lmtp and idle-fanout recipient
	ServerPID  int // if set, idle-fanout reports the PSS growth of its process tree per idler
	Progress   io.Writer

	seq atomic.Int64 // numbers messages built on the fly (lmtp, idle-fanout, mixed)
}

// Rep is the outcome of one repetition. Value is the figure compared across runs: seconds
// for most workloads, the p99 notification latency for idle-fanout, ops/s for mixed.
type Rep struct {
	Value     float64  `json:"value"`
	Seconds   float64  `json:"seconds"`
	Count     int      `json:"count"`
	Bytes     int64    `json:"bytes,omitempty"`
	Errors    int      `json:"errors"`
	OpsPerSec float64  `json:"ops_per_sec,omitempty"`
	Latency   *Latency `json:"latency,omitempty"`
	// KBPerSession: idle-fanout with --server-pid: the growth of the server's PSS (its
	// process tree's) from before the idlers connected to when all were in IDLE, per idler.
	KBPerSession float64 `json:"kb_per_session,omitempty"`
	// FullSeconds and Ratio: qresync's FETCH 1:* (FLAGS) in the resynchronised session,
	// and the resync's time over it.
	FullSeconds float64 `json:"full_seconds,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"`
}

// Latency is a distribution summary, in seconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// workload runs one repetition; the ctx deadline bounds it.
type workload struct {
	name string
	unit string // unit of Rep.Value: "s" (lower is better) or "ops/s" (higher is better)
	run  func(b *Bench, ctx context.Context, rep int) (Rep, error)
}

// workloads in the order a full run takes them; load comes first when asked for, so that
// the read workloads find a filled mailbox.
var workloads = []workload{
	{"load", "s", (*Bench).load},
	{"append", "s", (*Bench).appendRun},
	{"append-nagle", "s", (*Bench).appendNagle},
	{"fetch-meta", "s", (*Bench).fetchMeta},
	{"fetch-body", "s", (*Bench).fetchBody},
	{"search-text", "s", (*Bench).searchText},
	{"qresync", "s", (*Bench).qresync},
	{"sort-date", "s", (*Bench).sortDate},
	{"sort-arrival", "s", (*Bench).sortArrival},
	{"sort-expunge", "s", (*Bench).sortExpunge},
	{"thread-refs", "s", (*Bench).threadRefs},
	{"pop3-download", "s", (*Bench).pop3Download},
	{"lmtp", "s", (*Bench).lmtp},
	{"idle-fanout", "s", (*Bench).idleFanout},
	{"idle-latency", "s", (*Bench).idleLatency},
	{"mixed", "ops/s", (*Bench).mixed},
}

func findWorkload(name string) (workload, bool) {
	for _, w := range workloads {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

func (b *Bench) progress(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, format+"\n", args...)
	}
}

// dialIMAP connects and logs in as cred; the connection is closed when ctx ends, so that a
// stuck server cannot hold the run past its deadline.
func (b *Bench) dialIMAP(ctx context.Context, cred Credential, opts *imapclient.Options) (*imapclient.Client, error) {
	return b.dialIMAPAt(ctx, b.IMAP, cred, opts)
}

// dialIMAPAt is dialIMAP to another address than IMAP (another node).
func (b *Bench) dialIMAPAt(ctx context.Context, addr string, cred Credential, opts *imapclient.Options) (*imapclient.Client, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.Dialer = &net.Dialer{Timeout: b.Conn.timeout}
	opts.TLSConfig = b.Conn.tlsConfig()
	var c *imapclient.Client
	var err error
	switch {
	case b.Conn.tls:
		c, err = imapclient.DialTLS(addr, opts)
	case b.Conn.startTLS:
		c, err = imapclient.DialStartTLS(addr, opts)
	default:
		c, err = imapclient.DialInsecure(addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("imap: dial %s: %w", addr, err)
	}
	context.AfterFunc(ctx, func() { c.Close() })
	if err := c.Login(cred.User, cred.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap: login %s: %w", cred.User, err)
	}
	return c, nil
}

// appendN appends corpus messages first..first+n-1 to mailbox, one APPEND at a time.
func (b *Bench) appendN(c *imapclient.Client, mailbox string, first, n int) (int64, error) {
	var total int64
	for i := first; i < first+n; i++ {
		msg := b.Corpus.Message(i)
		cmd := c.Append(mailbox, int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			return total, fmt.Errorf("imap: APPEND %d: %w", i, err)
		}
		if err := cmd.Close(); err != nil {
			return total, fmt.Errorf("imap: APPEND %d: %w", i, err)
		}
		if _, err := cmd.Wait(); err != nil {
			return total, fmt.Errorf("imap: APPEND %d: %w", i, err)
		}
		total += int64(len(msg))
		if (i-first+1)%1000 == 0 {
			b.progress("  appended %d/%d", i-first+1, n)
		}
	}
	return total, nil
}

// load fills Mailbox up to Messages corpus messages (message k of the corpus becomes the
// k+1st message), so that it can be repeated and resumed; a full mailbox is left alone.
func (b *Bench) load(ctx context.Context, _ int) (Rep, error) {
	c, err := b.dialIMAP(ctx, b.Users[0], nil)
	if err != nil {
		return Rep{}, err
	}
	defer c.Close()
	st, err := c.Status(b.Mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return Rep{}, fmt.Errorf("imap: STATUS %s: %w", b.Mailbox, err)
	}
	have := int(*st.NumMessages)
	n := max(b.Messages-have, 0)
	b.progress("  %s has %d messages, appending %d", b.Mailbox, have, n)
	start := time.Now()
	size, err := b.appendN(c, b.Mailbox, have, n)
	d := time.Since(start)
	c.Logout().Wait()
	return Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: n, Bytes: size}, err
}

// scratchMailbox is where the append workload writes, so that its repetitions leave the
// mailbox of the read workloads as it was.
const scratchMailbox = "bench-append"

// appendRun appends Messages messages to a fresh scratch mailbox over one connection,
// times the APPENDs only, then deletes the mailbox.
func (b *Bench) appendRun(ctx context.Context, _ int) (Rep, error) {
	c, err := b.dialIMAP(ctx, b.Users[0], nil)
	if err != nil {
		return Rep{}, err
	}
	defer c.Close()
	c.Delete(scratchMailbox).Wait() // left over from an interrupted run, or absent
	if err := c.Create(scratchMailbox, nil).Wait(); err != nil {
		return Rep{}, fmt.Errorf("imap: CREATE %s: %w", scratchMailbox, err)
	}
	start := time.Now()
	size, err := b.appendN(c, scratchMailbox, 0, b.Messages)
	d := time.Since(start)
	if err != nil {
		return Rep{}, err
	}
	if err := c.Delete(scratchMailbox).Wait(); err != nil {
		return Rep{}, fmt.Errorf("imap: DELETE %s: %w", scratchMailbox, err)
	}
	c.Logout().Wait()
	return Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: b.Messages, Bytes: size}, nil
}

// appendNagle is append as Python's imaplib does it with a socket as it comes: Nagle's
// algorithm on (Go turns it off by default, and imapclient's buffered writes hide the
// cost), and each APPEND's literal and the CRLF after it sent in two writes once "+" has
// come. A server that leaves the literal's ACK to the kernel's delayed-ACK timer makes the
// client hold that CRLF back for up to 40 ms on every message.
func (b *Bench) appendNagle(ctx context.Context, _ int) (Rep, error) {
	conn, err := (&net.Dialer{Timeout: b.Conn.timeout}).DialContext(ctx, "tcp", b.IMAP)
	if err != nil {
		return Rep{}, fmt.Errorf("imap: dial %s: %w", b.IMAP, err)
	}
	defer conn.Close()
	context.AfterFunc(ctx, func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetNoDelay(false); err != nil {
		return Rep{}, err
	}
	var c net.Conn = conn
	if b.Conn.tls {
		c = tls.Client(conn, b.Conn.tlsConfig())
	}
	w := &wireClient{conn: c, br: bufio.NewReader(c)}
	if _, err := w.line(); err != nil { // the greeting
		return Rep{}, err
	}
	u := b.Users[0]
	if err := w.command(fmt.Sprintf("LOGIN %s %s", imapQuote(u.User), imapQuote(u.Password))); err != nil {
		return Rep{}, err
	}
	w.command("DELETE " + scratchMailbox) // left over from an interrupted run, or absent
	if err := w.command("CREATE " + scratchMailbox); err != nil {
		return Rep{}, err
	}
	var size int64
	start := time.Now()
	for i := range b.Messages {
		msg := b.Corpus.Message(i)
		if err := w.appendTwoWrites(scratchMailbox, msg); err != nil {
			return Rep{}, fmt.Errorf("imap: APPEND %d: %w", i, err)
		}
		size += int64(len(msg))
	}
	d := time.Since(start)
	if err := w.command("DELETE " + scratchMailbox); err != nil {
		return Rep{}, err
	}
	w.command("LOGOUT")
	return Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: b.Messages, Bytes: size}, nil
}

// wireClient speaks IMAP line by line, for the workloads that must write as a particular
// client does, which imapclient cannot be made to.
type wireClient struct {
	conn net.Conn
	br   *bufio.Reader
	tag  int
}

func (w *wireClient) line() (string, error) {
	l, err := w.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("imap: read: %w", err)
	}
	return l, nil
}

// command sends one command without literals and reads to its tagged answer, which must
// be OK.
func (w *wireClient) command(cmd string) error {
	w.tag++
	tag := fmt.Sprintf("W%d", w.tag)
	if _, err := io.WriteString(w.conn, tag+" "+cmd+"\r\n"); err != nil {
		return fmt.Errorf("imap: %s: %w", cmd, err)
	}
	return w.tagged(tag, cmd)
}

func (w *wireClient) tagged(tag, what string) error {
	for {
		l, err := w.line()
		if err != nil {
			return err
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("imap: %s: %s", what, strings.TrimSpace(l))
			}
			return nil
		}
	}
}

// appendTwoWrites sends APPEND with a synchronizing literal, and once "+" has come, the
// literal in one write and its closing CRLF in another.
func (w *wireClient) appendTwoWrites(mailbox string, msg []byte) error {
	w.tag++
	tag := fmt.Sprintf("W%d", w.tag)
	if _, err := fmt.Fprintf(w.conn, "%s APPEND %s {%d}\r\n", tag, mailbox, len(msg)); err != nil {
		return err
	}
	l, err := w.line()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+") {
		return fmt.Errorf("no continuation: %s", strings.TrimSpace(l))
	}
	if _, err := w.conn.Write(msg); err != nil {
		return err
	}
	if _, err := io.WriteString(w.conn, "\r\n"); err != nil {
		return err
	}
	return w.tagged(tag, "APPEND")
}

// imapQuote is s as an IMAP quoted string (RFC 3501 §4.3).
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// uidFetchAll times UID FETCH 1:* with the given items over a selected Mailbox, reading
// every literal to the end, and checks that every message came.
func (b *Bench) uidFetchAll(ctx context.Context, opts *imap.FetchOptions) (Rep, error) {
	c, err := b.dialIMAP(ctx, b.Users[0], nil)
	if err != nil {
		return Rep{}, err
	}
	defer c.Close()
	sel, err := c.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return Rep{}, fmt.Errorf("imap: SELECT %s: %w", b.Mailbox, err)
	}
	start := time.Now()
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opts)
	count, size := 0, int64(0)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		count++
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataBodySection:
				n, err := io.Copy(io.Discard, item.Literal)
				size += n
				if err != nil {
					return Rep{}, fmt.Errorf("imap: FETCH body: %w", err)
				}
			case imapclient.FetchItemDataRFC822Size:
				size += item.Size
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return Rep{}, fmt.Errorf("imap: UID FETCH: %w", err)
	}
	d := time.Since(start)
	c.Logout().Wait()
	rep := Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: count, Bytes: size}
	if count != int(sel.NumMessages) {
		rep.Errors++
		return rep, fmt.Errorf("imap: UID FETCH 1:* returned %d of %d messages", count, sel.NumMessages)
	}
	return rep, nil
}

// fetchMeta is UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE); Bytes sums RFC822.SIZE.
func (b *Bench) fetchMeta(ctx context.Context, _ int) (Rep, error) {
	return b.uidFetchAll(ctx, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true})
}

// fetchBody is UID FETCH 1:* (BODY.PEEK[]); Bytes counts the literals read.
func (b *Bench) fetchBody(ctx context.Context, _ int) (Rep, error) {
	return b.uidFetchAll(ctx, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
}

// searchText is SEARCH TEXT "word" over a selected Mailbox; Count is the number of hits.
func (b *Bench) searchText(ctx context.Context, _ int) (Rep, error) {
	c, err := b.dialIMAP(ctx, b.Users[0], nil)
	if err != nil {
		return Rep{}, err
	}
	defer c.Close()
	if _, err := c.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return Rep{}, fmt.Errorf("imap: SELECT %s: %w", b.Mailbox, err)
	}
	word := b.Corpus.Word
	if word == "" {
		word = benchcorpus.DefaultWord
	}
	start := time.Now()
	data, err := c.Search(&imap.SearchCriteria{Text: []string{word}}, nil).Wait()
	d := time.Since(start)
	if err != nil {
		return Rep{}, fmt.Errorf("imap: SEARCH TEXT: %w", err)
	}
	c.Logout().Wait()
	return Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: len(data.AllSeqNums())}, nil
}

// pop3Download times a whole POP3 session: USER/PASS, STAT, UIDL, RETR of every message,
// QUIT (no DELE: the maildrop is left as it was).
func (b *Bench) pop3Download(ctx context.Context, _ int) (Rep, error) {
	start := time.Now()
	c, err := dialPOP3(b.POP3, b.Conn)
	if err != nil {
		return Rep{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	cred := b.Users[0]
	if err := c.login(cred.User, cred.Password); err != nil {
		return Rep{}, err
	}
	n, err := c.stat()
	if err != nil {
		return Rep{}, err
	}
	if _, lines, err := c.multi("UIDL"); err != nil {
		return Rep{}, err
	} else if lines != n {
		return Rep{}, fmt.Errorf("pop3: UIDL listed %d of %d messages", lines, n)
	}
	var size int64
	for i := 1; i <= n; i++ {
		got, _, err := c.multi("RETR %d", i)
		if err != nil {
			return Rep{}, err
		}
		size += got
	}
	if err := c.quit(); err != nil {
		return Rep{}, err
	}
	d := time.Since(start)
	return Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: n, Bytes: size}, nil
}

// lmtpSession is one LMTP connection after LHLO, always in the clear: LMTP is a local
// protocol (RFC 2033 section 1), and --tls/--starttls apply to IMAP and POP3 only.
func (b *Bench) lmtpSession(ctx context.Context) (*smtp.Client, error) {
	return b.lmtpSessionAt(ctx, b.LMTP)
}

// lmtpSessionAt is lmtpSession to the LMTP server at addr.
func (b *Bench) lmtpSessionAt(ctx context.Context, addr string) (*smtp.Client, error) {
	d := net.Dialer{Timeout: b.Conn.timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lmtp: dial %s: %w", addr, err)
	}
	c := smtp.NewClientLMTP(conn)
	context.AfterFunc(ctx, func() { conn.Close() })
	if err := c.Hello("bench.localhost"); err != nil {
		c.Close()
		return nil, fmt.Errorf("lmtp: LHLO: %w", err)
	}
	return c, nil
}

// deliver sends one message in an open LMTP session and waits for the recipient's reply.
func (b *Bench) deliver(c *smtp.Client, rcpt string, msg []byte) error {
	if err := c.Mail("bench@bench.example", nil); err != nil {
		return fmt.Errorf("lmtp: MAIL: %w", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("lmtp: RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("lmtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("lmtp: DATA: %w", err)
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		return fmt.Errorf("lmtp: DATA: %w", err)
	}
	return nil
}

// nextMessage builds a corpus message numbered after the ones load puts in (unique
// Message-IDs), for the workloads that add mail as they go.
func (b *Bench) nextMessage() []byte {
	return b.Corpus.Message(1_000_000 + int(b.seq.Add(1)))
}

// lmtp delivers Messages messages to the DeliverTo user over Concurrency connections, each
// taking the next message until all are sent; an error ends that sender only. With
// LMTPNodes the senders take the nodes in turn.
func (b *Bench) lmtp(ctx context.Context, _ int) (Rep, error) {
	rcpt := b.Users[b.DeliverTo].User
	msgs := make([][]byte, b.Messages)
	for i := range msgs {
		msgs[i] = b.nextMessage()
	}
	var next atomic.Int64
	var sent, failed atomic.Int64
	var size atomic.Int64
	var mu sync.Mutex
	var firstErr error
	senders := max(min(b.Concurrency, b.Messages), 1)
	var wg sync.WaitGroup
	start := time.Now()
	nodes := b.LMTPNodes
	if len(nodes) == 0 {
		nodes = []string{b.LMTP}
	}
	for k := range senders {
		addr := nodes[k%len(nodes)]
		wg.Go(func() {
			fail := func(err error, n int64) {
				failed.Add(n)
				mu.Lock()
				firstErr = cmp(firstErr, err)
				mu.Unlock()
			}
			c, err := b.lmtpSessionAt(ctx, addr)
			if err != nil {
				fail(err, 0)
				return
			}
			defer c.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(msgs) {
					break
				}
				if err := b.deliver(c, rcpt, msgs[i]); err != nil {
					fail(err, 1)
					return
				}
				sent.Add(1)
				size.Add(int64(len(msgs[i])))
			}
			c.Quit()
		})
	}
	wg.Wait()
	d := time.Since(start)
	rep := Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: int(sent.Load()), Bytes: size.Load(), Errors: int(failed.Load())}
	if rep.Count != b.Messages {
		return rep, fmt.Errorf("lmtp: delivered %d of %d: %w", rep.Count, b.Messages, firstErr)
	}
	return rep, nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// idleFanout puts Idlers sessions of the DeliverTo user into IDLE on INBOX, delivers one
// message by LMTP, and measures for each idler the time from the start of the delivery to
// the EXISTS that tells it (RFC 2177; RFC 3501 section 7.3.1). Value is the p99. With
// ServerPID, it also reports the server's memory growth per idle session.
func (b *Bench) idleFanout(ctx context.Context, _ int) (Rep, error) {
	cred := b.Users[b.DeliverTo]
	type idler struct {
		c    *imapclient.Client
		idle *imapclient.IdleCommand
	}
	var t0 atomic.Int64 // UnixNano when the delivery started
	notified := make(chan time.Duration, b.Idlers)
	idlers := make([]idler, 0, b.Idlers)
	defer func() {
		for _, id := range idlers {
			if id.idle != nil {
				id.idle.Close()
				id.idle.Wait()
			}
			id.c.Close()
		}
	}()
	var pssBefore int64
	if b.ServerPID > 0 {
		var err error
		if pssBefore, err = processTreePSS(b.ServerPID); err != nil {
			return Rep{}, fmt.Errorf("idle-fanout: server memory: %w", err)
		}
	}
	for k := range b.Idlers {
		var base atomic.Uint32
		var told atomic.Bool
		opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				start := t0.Load()
				if data.NumMessages == nil || start == 0 || *data.NumMessages <= base.Load() {
					return
				}
				if told.CompareAndSwap(false, true) {
					notified <- time.Since(time.Unix(0, start))
				}
			},
		}}
		c, err := b.dialIMAP(ctx, cred, opts)
		if err != nil {
			return Rep{}, fmt.Errorf("idler %d: %w", k, err)
		}
		idlers = append(idlers, idler{c: c})
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			return Rep{}, fmt.Errorf("idler %d: SELECT INBOX: %w", k, err)
		}
		base.Store(sel.NumMessages)
		idle, err := c.Idle()
		if err != nil {
			return Rep{}, fmt.Errorf("idler %d: IDLE: %w", k, err)
		}
		idlers[k].idle = idle
		if (k+1)%100 == 0 {
			b.progress("  %d/%d idlers in IDLE", k+1, b.Idlers)
		}
	}
	var kbPerSession float64
	if b.ServerPID > 0 {
		pssAfter, err := processTreePSS(b.ServerPID)
		if err != nil {
			return Rep{}, fmt.Errorf("idle-fanout: server memory: %w", err)
		}
		kbPerSession = float64(pssAfter-pssBefore) / float64(b.Idlers)
	}
	lc, err := b.lmtpSession(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer lc.Close()
	msg := b.nextMessage()
	t0.Store(time.Now().UnixNano())
	if err := b.deliver(lc, cred.User, msg); err != nil {
		return Rep{}, err
	}
	lc.Quit()
	lat := make([]time.Duration, 0, b.Idlers)
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
collect:
	for len(lat) < b.Idlers {
		select {
		case d := <-notified:
			lat = append(lat, d)
		case <-wait.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	rep := Rep{Count: len(lat), Errors: b.Idlers - len(lat), KBPerSession: kbPerSession}
	if len(lat) > 0 {
		slices.Sort(lat)
		rep.Latency = &Latency{P50: percentile(lat, 50), P99: percentile(lat, 99), Max: lat[len(lat)-1].Seconds()}
		rep.Value, rep.Seconds = rep.Latency.P99, rep.Latency.Max
	}
	if rep.Errors > 0 {
		return rep, fmt.Errorf("idle-fanout: %d of %d idlers not told of the new message within 30s", rep.Errors, b.Idlers)
	}
	return rep, nil
}

// percentile of sorted durations, nearest-rank, in seconds.
func percentile(sorted []time.Duration, p int) float64 {
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1].Seconds()
}

// mixedMailbox is the mailbox the mixed load works in, so that its expunges touch only the
// messages it appended itself.
const mixedMailbox = "bench-mixed"

// mixed runs Clients clients for Duration, each repeating a whole session: LOGIN, LIST,
// SELECT, FETCH of the last 10 messages, APPEND, UID STORE +FLAGS (\Deleted) of the
// appended message, EXPUNGE, LOGOUT. Count is the commands that succeeded; Value is ops/s.
// A failed command ends its session (counted in Errors); the client then starts another.
func (b *Bench) mixed(ctx context.Context, _ int) (Rep, error) {
	for _, cred := range b.Users { // the mailbox, with a few messages to FETCH
		c, err := b.dialIMAP(ctx, cred, nil)
		if err != nil {
			return Rep{}, err
		}
		if err := c.Create(mixedMailbox, nil).Wait(); err == nil {
			for range 10 {
				msg := b.nextMessage()
				ac := c.Append(mixedMailbox, int64(len(msg)), nil)
				ac.Write(msg)
				ac.Close()
				if _, err := ac.Wait(); err != nil {
					c.Close()
					return Rep{}, fmt.Errorf("imap: APPEND to %s: %w", mixedMailbox, err)
				}
			}
		}
		c.Logout().Wait()
		c.Close()
	}
	var ops, errs atomic.Int64
	var mu sync.Mutex
	var firstErr error
	deadline := time.Now().Add(b.Duration)
	runCtx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for k := range max(b.Clients, 1) {
		cred := b.Users[k%len(b.Users)]
		wg.Go(func() {
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				if err := b.mixedSession(runCtx, cred, &ops); err != nil {
					errs.Add(1)
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // no hot loop against a refusing server
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	rep := Rep{Seconds: d.Seconds(), Count: int(ops.Load()), Errors: int(errs.Load())}
	rep.OpsPerSec = float64(rep.Count) / d.Seconds()
	rep.Value = rep.OpsPerSec
	if rep.Errors > 0 {
		b.progress("  mixed: %d failed sessions, first: %v", rep.Errors, firstErr)
	}
	return rep, nil
}

func (b *Bench) mixedSession(ctx context.Context, cred Credential, ops *atomic.Int64) error {
	ctx, cancel := context.WithCancel(ctx) // ends the close-on-deadline hook with the session
	defer cancel()
	c, err := b.dialIMAP(ctx, cred, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ops.Add(1) // LOGIN
	if _, err := c.List("", "*", nil).Collect(); err != nil {
		return fmt.Errorf("imap: LIST: %w", err)
	}
	ops.Add(1)
	sel, err := c.Select(mixedMailbox, nil).Wait()
	if err != nil {
		return fmt.Errorf("imap: SELECT: %w", err)
	}
	ops.Add(1)
	if n := sel.NumMessages; n > 0 {
		set := imap.SeqSet{imap.SeqRange{Start: max(n, 10) - 9, Stop: n}}
		if _, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true}).Collect(); err != nil {
			return fmt.Errorf("imap: FETCH: %w", err)
		}
	}
	ops.Add(1)
	msg := b.nextMessage()
	ac := c.Append(mixedMailbox, int64(len(msg)), nil)
	if _, err := ac.Write(msg); err != nil {
		return fmt.Errorf("imap: APPEND: %w", err)
	}
	if err := ac.Close(); err != nil {
		return fmt.Errorf("imap: APPEND: %w", err)
	}
	data, err := ac.Wait()
	if err != nil {
		return fmt.Errorf("imap: APPEND: %w", err)
	}
	ops.Add(1)
	uid := data.UID
	if uid == 0 { // no UIDPLUS (RFC 4315): find it by its Message-ID
		id := msg[bytes.Index(msg, []byte("Message-ID: "))+len("Message-ID: "):]
		id = id[:bytes.IndexByte(id, '\r')]
		found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: string(id)}}}, nil).Wait()
		if err != nil || len(found.AllUIDs()) == 0 {
			return errors.Join(errors.New("imap: appended message not found"), err)
		}
		uid = found.AllUIDs()[0]
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(imap.UIDSetNum(uid), store, nil).Close(); err != nil {
		return fmt.Errorf("imap: UID STORE: %w", err)
	}
	ops.Add(1)
	if err := c.Expunge().Close(); err != nil {
		return fmt.Errorf("imap: EXPUNGE: %w", err)
	}
	ops.Add(1)
	if err := c.Logout().Wait(); err != nil {
		return fmt.Errorf("imap: LOGOUT: %w", err)
	}
	ops.Add(1)
	return nil
}
