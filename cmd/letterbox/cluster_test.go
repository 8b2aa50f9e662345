package main

// The two-node tests, as processes: two `letterbox serve` on one PostgreSQL database (a
// fresh one from storetest.Database; skipped without LETTERBOX_TEST_PG_URL, e.g.
//
//	scripts/pg-test-cluster go test -tags sqlite_fts5 ./cmd/letterbox -run Cluster
//
// ), driven by real clients: go-imap v2's imapclient, go-smtp's LMTP client, POP3 over
// net/textproto, and a raw IMAP connection for QRESYNC's VANISHED, which imapclient does
// not parse. What a cluster promises (docs/architecture.md): what one node does, the others' sessions see
// (IDLE included); one POP3 session per maildrop across nodes; UIDs without gaps or
// duplicates under writers on both nodes; a node killed with SIGKILL loses nothing it
// acknowledged, and the other keeps serving. The waits below are failure guards with
// generous deadlines, never assertions of speed.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/internal/store/storetest"
)

// clusterGuard bounds every wait for something another node did: far above the 1 s the
// issue asks for, so that only a change that never arrives fails, not a slow machine.
const clusterGuard = 20 * time.Second

// cluster is two nodes on one PostgreSQL database, each with its own data directory.
type cluster struct {
	t    *testing.T
	url  string
	a, b *e2eServer
}

// startCluster starts two `letterbox serve` processes on a fresh database and adds the
// given accounts (password "pw") through node A's command line.
func startCluster(t *testing.T, accounts ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	c := &cluster{t: t, url: storetest.Database(t)}
	c.a = c.startNode(t.TempDir())
	c.b = c.startNode(t.TempDir())
	for _, acct := range accounts {
		r := lb(t, nil, "pw\n", "user", "add", acct, "--password-stdin", "--data", c.a.data, "--store", c.url)
		expectCode(t, r, 0, "user add "+acct)
	}
	return c
}

func (c *cluster) startNode(data string) *e2eServer {
	c.t.Helper()
	return startE2E(c.t, data, "--store", c.url)
}

// logs is both nodes' logs, for a failure message.
func (c *cluster) logs() string {
	return "node A log:\n" + c.a.log.String() + "\nnode B log:\n" + c.b.log.String()
}

// clusterLMTP is one LMTP session (go-smtp's client, RFC 2033) after LHLO.
func clusterLMTP(addr string) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	// Every reply comes within the guard, or the session counts as failed.
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c := smtp.NewClientLMTP(conn)
	if err := c.Hello("cluster.test"); err != nil {
		c.Close()
		return nil, fmt.Errorf("LHLO: %w", err)
	}
	return c, nil
}

// clusterSend delivers one message in an open LMTP session; nil means the recipient got
// 250 (RFC 2033 section 4.2: one reply per recipient after the final dot).
func clusterSend(c *smtp.Client, rcpt, msgID string) error {
	if err := c.Mail("alice@example.org", nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	msg := fmt.Sprintf("From: alice@example.org\r\nTo: %s\r\nSubject: cluster test\r\nMessage-ID: %s\r\n\r\nbody of %s\r\n", rcpt, msgID, msgID)
	if _, err := w.Write([]byte(msg)); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// clusterDeliver delivers one message in a session of its own.
func clusterDeliver(t *testing.T, addr, rcpt, msgID string) {
	t.Helper()
	c, err := clusterLMTP(addr)
	if err != nil {
		t.Fatalf("LMTP %s: %v", addr, err)
	}
	defer c.Close()
	if err := clusterSend(c, rcpt, msgID); err != nil {
		t.Fatalf("LMTP delivery of %s to %s: %v", msgID, addr, err)
	}
	c.Quit()
}

// messageIDs lists INBOX's messages (UID order) with their Message-IDs, over IMAP.
func messageIDs(t *testing.T, c *imapclient.Client) ([]imap.UID, []string) {
	t.Helper()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("EXAMINE INBOX: %v", err)
	}
	all, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH ALL: %v", err)
	}
	uids := all.AllUIDs()
	if len(uids) == 0 {
		return nil, nil
	}
	fetched, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH ENVELOPE: %v", err)
	}
	slices.SortFunc(fetched, func(x, y *imapclient.FetchMessageBuffer) int { return int(x.UID) - int(y.UID) })
	var us []imap.UID
	var ids []string
	for _, m := range fetched {
		us = append(us, m.UID)
		id := ""
		if m.Envelope != nil {
			id = m.Envelope.MessageID
		}
		ids = append(ids, id)
	}
	return us, ids
}

// IMAP IDLE on node B sees a message delivered by LMTP to node A (RFC 2177: EXISTS while
// idling; RFC 3501 section 7.3.1), and node B then fetches it.
func TestClusterIdleSeesDeliveryOnOtherNode(t *testing.T) {
	cl := startCluster(t, "bob@example.net")
	exists := make(chan uint32, 16)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}}
	c, err := imapclient.DialInsecure(cl.b.ports["imap"], opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.net", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 0 {
		t.Fatalf("SELECT INBOX on node B: %v, %d messages (want 0)", err, sel.NumMessages)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	clusterDeliver(t, cl.a.ports["lmtp"], "bob@example.net", "<1.idle@cluster.test>")
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("node B's idler got EXISTS %d, want 1", n)
		}
	case <-time.After(clusterGuard):
		t.Fatalf("node B's idler was not told of the delivery to node A within %s\n%s", clusterGuard, cl.logs())
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.MessageID != "1.idle@cluster.test" {
		t.Fatalf("FETCH 1 ENVELOPE on node B: %v, %+v", err, msgs)
	}
	if msgs[0].UID != 1 {
		t.Errorf("the first message has UID %d, want 1", msgs[0].UID)
	}
}

// popLogin sends USER and PASS on a fresh POP3 connection and returns the connection and
// PASS's reply line, whatever it is.
func popLogin(t *testing.T, addr, user, pass string) (*textproto.Conn, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(conn)
	t.Cleanup(func() { tp.Close() })
	if _, err := tp.ReadLine(); err != nil {
		t.Fatal(err)
	}
	pop3Cmd(t, tp, "USER %s", user)
	if err := tp.PrintfLine("PASS %s", pass); err != nil {
		t.Fatal(err)
	}
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	return tp, line
}

// popLoginEventually logs in until the maildrop is free: after a QUIT, or the death of the
// node that held it. Only [IN-USE] is retried, until the guard passes.
func popLoginEventually(t *testing.T, addr, user, pass, what string) *textproto.Conn {
	t.Helper()
	deadline := time.Now().Add(clusterGuard)
	for {
		tp, line := popLogin(t, addr, user, pass)
		if strings.HasPrefix(line, "+OK") {
			return tp
		}
		tp.Close()
		if !strings.Contains(line, "[IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("POP3 login %s: %s", what, line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// One POP3 session per maildrop across the cluster (RFC 1939 section 8, RFC 2449's
// [IN-USE]): while node A's session holds it, a login on node B is refused with
// -ERR [IN-USE]; after A's QUIT, B gets in; and when the node holding it is killed, the
// lock dies with it (its PostgreSQL connection closes) and the other node gets in.
func TestClusterPOP3LockAcrossNodes(t *testing.T) {
	cl := startCluster(t, "carol@example.net")
	clusterDeliver(t, cl.a.ports["lmtp"], "carol@example.net", "<1.pop@cluster.test>")

	onA, line := popLogin(t, cl.a.ports["pop3"], "carol@example.net", "pw")
	if !strings.HasPrefix(line, "+OK") {
		t.Fatalf("POP3 login on node A: %s", line)
	}
	if stat := pop3Cmd(t, onA, "STAT"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Fatalf("STAT on node A: %s, want one message", stat)
	}
	for range 2 { // refused, and refused again: a refusal takes no lock of its own
		tp, line := popLogin(t, cl.b.ports["pop3"], "carol@example.net", "pw")
		if !strings.HasPrefix(line, "-ERR [IN-USE]") {
			t.Fatalf("POP3 login on node B while node A holds the maildrop: %q, want -ERR [IN-USE]\n%s", line, cl.logs())
		}
		tp.Close()
	}
	// IMAP is never locked out by POP3.
	imapLogin(t, cl.b.ports["imap"], "carol@example.net", "pw")

	pop3Cmd(t, onA, "QUIT")
	onB := popLoginEventually(t, cl.b.ports["pop3"], "carol@example.net", "pw", "on node B after node A's QUIT")
	if ids := pop3MessageIDs(t, onB); !slices.Equal(ids, []string{"<1.pop@cluster.test>"}) {
		t.Fatalf("node B's maildrop: %v", ids)
	}
	// Now B holds it: A is refused.
	if tp, line := popLogin(t, cl.a.ports["pop3"], "carol@example.net", "pw"); !strings.HasPrefix(line, "-ERR [IN-USE]") {
		t.Fatalf("POP3 login on node A while node B holds the maildrop: %q, want -ERR [IN-USE]", line)
	} else {
		tp.Close()
	}
	pop3Cmd(t, onB, "QUIT")

	// A session on A, then A dies with SIGKILL (no QUIT, no clean shutdown).
	onA, line = popLoginEventuallyLine(t, cl.a.ports["pop3"], "carol@example.net", "pw")
	if !strings.HasPrefix(line, "+OK") {
		t.Fatalf("POP3 login on node A again: %s", line)
	}
	cl.a.kill()
	onB = popLoginEventually(t, cl.b.ports["pop3"], "carol@example.net", "pw", "on node B after node A was killed holding the maildrop")
	pop3Cmd(t, onB, "QUIT")
}

// popLoginEventuallyLine is popLoginEventually that returns the last reply instead of
// failing on it.
func popLoginEventuallyLine(t *testing.T, addr, user, pass string) (*textproto.Conn, string) {
	t.Helper()
	deadline := time.Now().Add(clusterGuard)
	for {
		tp, line := popLogin(t, addr, user, pass)
		if !strings.Contains(line, "[IN-USE]") || time.Now().After(deadline) {
			return tp, line
		}
		tp.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// rawIdleUntil reads a raw IMAP connection in IDLE until a line starting with prefix,
// returning it; any tagged response or the guard's passing fails.
func rawIdleUntil(t *testing.T, ri *rawIMAP, prefix string) string {
	t.Helper()
	_ = ri.c.SetReadDeadline(time.Now().Add(clusterGuard))
	for {
		line := string(bytes.TrimRight(ri.response(), "\r\n"))
		if strings.HasPrefix(line, prefix) {
			return line
		}
		if !strings.HasPrefix(line, "* ") && !strings.HasPrefix(line, "+ ") {
			t.Fatalf("in IDLE: %q while waiting for %q", line, prefix)
		}
	}
}

// A POP3 DELE and QUIT on node B reaches node A's IMAP sessions in IDLE: a plain client as
// EXPUNGE with the message's sequence number (RFC 3501 section 7.4.1), a client that
// enabled QRESYNC as VANISHED with its UID (RFC 7162 section 3.2.10).
func TestClusterPOP3ExpungeReachesIdle(t *testing.T) {
	cl := startCluster(t, "dave@example.net")
	for i := 1; i <= 3; i++ {
		clusterDeliver(t, cl.a.ports["lmtp"], "dave@example.net", fmt.Sprintf("<%d.dele@cluster.test>", i))
	}

	expunged := make(chan uint32, 16)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { expunged <- seq },
	}}
	c, err := imapclient.DialInsecure(cl.a.ports["imap"], opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("dave@example.net", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 3 {
		t.Fatalf("SELECT INBOX on node A: %v, %+v", err, sel)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	q := dialIMAP(t, cl.a.ports["imap"])
	q.command("q1", "LOGIN dave@example.net pw")
	q.command("q2", "ENABLE QRESYNC")
	q.command("q3", "SELECT INBOX")
	fmt.Fprintf(q.c, "q4 IDLE\r\n")
	rawIdleUntil(t, q, "+ ")

	// POP3 on node B: message 2 of the maildrop is UID 2.
	pop := popLoginEventually(t, cl.b.ports["pop3"], "dave@example.net", "pw", "on node B")
	if uidl := pop3Cmd(t, pop, "STAT"); !strings.HasPrefix(uidl, "+OK 3 ") {
		t.Fatalf("STAT on node B: %s", uidl)
	}
	pop3Cmd(t, pop, "DELE 2")
	pop3Cmd(t, pop, "QUIT")

	select {
	case seq := <-expunged:
		if seq != 2 {
			t.Fatalf("node A's idler got EXPUNGE %d, want 2", seq)
		}
	case <-time.After(clusterGuard):
		t.Fatalf("node A's idler was not told of node B's POP3 deletion within %s\n%s", clusterGuard, cl.logs())
	}
	if line := rawIdleUntil(t, q, "* VANISHED"); line != "* VANISHED 2" {
		t.Fatalf("node A's QRESYNC idler: %q, want * VANISHED 2", line)
	}
	fmt.Fprintf(q.c, "DONE\r\n")
	if line := rawIdleUntil(t, q, "q4 "); !strings.HasPrefix(line, "q4 OK") {
		t.Fatalf("IDLE's end: %q", line)
	}

	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	uids, ids := messageIDs(t, c)
	if !slices.Equal(uids, []imap.UID{1, 3}) || !slices.Equal(ids, []string{"1.dele@cluster.test", "3.dele@cluster.test"}) {
		t.Fatalf("node A's INBOX after node B's DELE 2: UIDs %v, Message-IDs %v", uids, ids)
	}
}

// APPENDs through both nodes at once (4 clients a node, 50 messages each) get unique UIDs,
// 1..400 without a gap (RFC 3501 section 2.3.1.1: strictly ascending; the store hands them
// out densely), and both nodes agree on UIDNEXT and the count.
func TestClusterConcurrentAppendsGetUniqueUIDs(t *testing.T) {
	cl := startCluster(t, "erin@example.net")
	const clients, each = 4, 50
	var mu sync.Mutex
	var got []imap.UID
	var validity []uint32
	var wg sync.WaitGroup
	for n, node := range []*e2eServer{cl.a, cl.b} {
		for k := range clients {
			c := imapLogin(t, node.ports["imap"], "erin@example.net", "pw")
			wg.Go(func() {
				for i := range each {
					msg := e2eMessage(fmt.Sprintf("<%d.%d.%d.append@cluster.test>", n, k, i), "append", "appended")
					cmd := c.Append("INBOX", int64(len(msg)), nil)
					if _, err := cmd.Write([]byte(msg)); err != nil {
						t.Error(err)
						return
					}
					if err := cmd.Close(); err != nil {
						t.Error(err)
						return
					}
					data, err := cmd.Wait()
					if err != nil {
						t.Errorf("APPEND on node %c: %v", 'A'+n, err)
						return
					}
					mu.Lock()
					got = append(got, data.UID)
					validity = append(validity, data.UIDValidity)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.Fatal(cl.logs())
	}
	const total = 2 * clients * each
	slices.Sort(got)
	for i, uid := range got {
		if uid != imap.UID(i+1) {
			t.Fatalf("APPENDUIDs %v: want 1..%d, each once", got, total)
		}
	}
	if slices.Min(validity) != slices.Max(validity) {
		t.Errorf("APPENDUID's UIDVALIDITY differs between appends: %v", validity)
	}
	for n, node := range []*e2eServer{cl.a, cl.b} {
		c := imapLogin(t, node.ports["imap"], "erin@example.net", "pw")
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if st.UIDNext != total+1 || st.NumMessages == nil || *st.NumMessages != total || st.UIDValidity != validity[0] {
			t.Errorf("STATUS on node %c: UIDNEXT %d, MESSAGES %v, UIDVALIDITY %d; want %d, %d, %d",
				'A'+n, st.UIDNext, st.NumMessages, st.UIDValidity, total+1, total, validity[0])
		}
		uids, ids := messageIDs(t, c)
		if len(uids) != total || uids[0] != 1 || uids[total-1] != total {
			t.Errorf("node %c lists %d messages, UIDs %v..%v", 'A'+n, len(uids), uids[0], uids[len(uids)-1])
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("node %c: message %s stored twice", 'A'+n, id)
			}
			seen[id] = true
		}
	}
}

// Several LMTP senders into both nodes; node A is killed with SIGKILL mid-stream. Every
// message either node answered 250 is in the store afterwards (counted through node B,
// which never stopped), nothing is stored twice, UIDs stay dense, node B keeps accepting
// deliveries and IMAP commands after the kill, and node A, restarted, sees the same.
func TestClusterKill9UnderLMTPLoad(t *testing.T) {
	cl := startCluster(t, "frank@example.net")
	const rcpt = "frank@example.net"
	const sendersPerNode = 3

	// An IMAP session on B, open across the kill: it must keep answering.
	watcher := imapLogin(t, cl.b.ports["imap"], rcpt, "pw")
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		acked  = map[string]int{} // Message-ID -> node (0 A, 1 B)
		afterB atomic.Int64       // node B's 250s after the kill
		killed atomic.Bool
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var ackedA atomic.Int64
	errsB := make(chan error, sendersPerNode)
	for n, node := range []*e2eServer{cl.a, cl.b} {
		for k := range sendersPerNode {
			wg.Go(func() {
				c, err := clusterLMTP(node.ports["lmtp"])
				if err != nil {
					if n == 1 {
						errsB <- err
					}
					return
				}
				defer c.Close()
				for i := 0; ctx.Err() == nil; i++ {
					id := fmt.Sprintf("<%d.%d.%d.kill@cluster.test>", n, k, i)
					if err := clusterSend(c, rcpt, id); err != nil {
						if n == 1 { // node B must never fail
							errsB <- fmt.Errorf("node B sender %d, message %d (after A's kill: %v): %w", k, i, killed.Load(), err)
						}
						return
					}
					mu.Lock()
					acked[id] = n
					mu.Unlock()
					if n == 0 {
						ackedA.Add(1)
					} else if killed.Load() {
						afterB.Add(1)
					}
				}
				c.Quit()
			})
		}
	}

	// Kill A once it has acknowledged a few dozen messages: by count, not by time.
	waitFor(t, "node A to acknowledge 60 deliveries", func() bool { return ackedA.Load() >= 60 })
	cl.a.kill()
	killed.Store(true)
	// B goes on: a few dozen more 250s after the kill, and its IMAP session answers.
	waitFor(t, "node B to acknowledge 60 deliveries after node A's kill", func() bool {
		select {
		case err := <-errsB:
			t.Fatalf("%v\n%s", err, cl.logs())
		default:
		}
		return afterB.Load() >= 60
	})
	if err := watcher.Noop().Wait(); err != nil {
		t.Fatalf("node B's IMAP session after node A's kill: NOOP: %v", err)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errsB:
		t.Fatalf("%v\n%s", err, cl.logs())
	default:
	}

	check := func(node string, addr string) {
		t.Helper()
		c := imapLogin(t, addr, rcpt, "pw")
		uids, ids := messageIDs(t, c)
		stored := map[string]bool{}
		for _, id := range ids {
			if stored[id] {
				t.Errorf("%s: message <%s> stored twice", node, id)
			}
			stored[id] = true
		}
		mu.Lock()
		defer mu.Unlock()
		lost := 0
		for id := range acked {
			if !stored[strings.Trim(id, "<>")] {
				lost++
				if lost <= 5 {
					t.Errorf("%s: message %s got 250 from node %c but is not in the store", node, id, 'A'+acked[id])
				}
			}
		}
		if lost > 0 {
			t.Fatalf("%s: %d of %d acknowledged messages lost (%d stored)", node, lost, len(acked), len(ids))
		}
		for i, uid := range uids {
			if uid != imap.UID(i+1) {
				t.Fatalf("%s: UIDs not dense after the kill: position %d holds UID %d", node, i, uid)
			}
		}
		t.Logf("%s: %d acknowledged, %d stored (at most one unacknowledged delivery per sender of node A may be stored too)", node, len(acked), len(ids))
		if len(ids) > len(acked)+sendersPerNode {
			t.Errorf("%s: %d stored, %d acknowledged: more than the %d deliveries in flight at the kill", node, len(ids), len(acked), sendersPerNode)
		}
	}
	check("node B", cl.b.ports["imap"])

	// Node A comes back on its data directory and serves the same mailbox.
	cl.a = cl.startNode(cl.a.data)
	check("node A restarted", cl.a.ports["imap"])
	clusterDeliver(t, cl.a.ports["lmtp"], rcpt, "<after.kill@cluster.test>")
}

// waitFor polls cond until it holds, failing after a generous guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
