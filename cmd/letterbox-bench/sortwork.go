package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The workloads of docs/performance.md's "SORT, THREAD and QRESYNC at 10,000 messages": a
// QRESYNC resynchronisation (RFC 7162 §3.2.5) after a few changes, SORT (DATE) and THREAD REFERENCES (RFC 5256) over the whole Mailbox. They speak
// the protocol line by line (wireClient): imapclient has no QRESYNC SELECT, and none of
// these responses carries a literal.

// qresyncChanges is how many messages another session changes before the resync.
const qresyncChanges = 10

// dialWire connects, reads the greeting and logs in as the measured user.
func (b *Bench) dialWire(ctx context.Context) (*wireClient, error) {
	conn, err := (&net.Dialer{Timeout: b.Conn.timeout}).DialContext(ctx, "tcp", b.IMAP)
	if err != nil {
		return nil, fmt.Errorf("imap: dial %s: %w", b.IMAP, err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	var c net.Conn = conn
	if b.Conn.tls {
		c = tls.Client(conn, b.Conn.tlsConfig())
	}
	w := &wireClient{conn: c, br: bufio.NewReaderSize(c, 64<<10)}
	if _, err := w.line(); err != nil {
		c.Close()
		return nil, err
	}
	u := b.Users[0]
	if err := w.command(fmt.Sprintf("LOGIN %s %s", imapQuote(u.User), imapQuote(u.Password))); err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

// run sends one command and returns its untagged responses (lines, CRLF removed); the
// tagged answer must be OK.
func (w *wireClient) run(cmd string) ([]string, error) {
	w.tag++
	tag := fmt.Sprintf("W%d", w.tag)
	if _, err := io.WriteString(w.conn, tag+" "+cmd+"\r\n"); err != nil {
		return nil, fmt.Errorf("imap: %s: %w", cmd, err)
	}
	var lines []string
	for {
		l, err := w.line()
		if err != nil {
			return lines, err
		}
		l = strings.TrimRight(l, "\r\n")
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return lines, fmt.Errorf("imap: %s: %s", cmd, l)
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
}

var (
	reUIDValidity = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
	reHighestMod  = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
	reExists      = regexp.MustCompile(`^\* (\d+) EXISTS`)
)

func responseNumber(lines []string, re *regexp.Regexp) (uint64, bool) {
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// qresync remembers the Mailbox's UIDVALIDITY and HIGHESTMODSEQ in one session, changes
// the flags of 10 messages spread over the mailbox from another (UID STORE, +FLAGS on even
// repetitions and -FLAGS on odd ones, so that each repetition changes them), then, in a
// new session after ENABLE QRESYNC, times SELECT Mailbox (QRESYNC (uidvalidity modseq)),
// and in that session FETCH 1:* (FLAGS) for comparison. Value is the resync's seconds;
// FullSeconds the FETCH's, Ratio the one over the other. Count is the FETCH responses the
// resync sent (at least the 10 changed).
func (b *Bench) qresync(ctx context.Context, rep int) (Rep, error) {
	before, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer before.conn.Close()
	if _, err := before.run("ENABLE QRESYNC"); err != nil {
		return Rep{}, err
	}
	sel, err := before.run("EXAMINE " + imapQuote(b.Mailbox))
	if err != nil {
		return Rep{}, err
	}
	validity, ok1 := responseNumber(sel, reUIDValidity)
	modseq, ok2 := responseNumber(sel, reHighestMod)
	exists, ok3 := responseNumber(sel, reExists)
	if !ok1 || !ok2 || !ok3 || exists < qresyncChanges {
		return Rep{}, fmt.Errorf("imap: EXAMINE %s: no UIDVALIDITY, HIGHESTMODSEQ or enough messages in %q", b.Mailbox, sel)
	}
	before.run("LOGOUT")

	changer, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer changer.conn.Close()
	if _, err := changer.run("SELECT " + imapQuote(b.Mailbox)); err != nil {
		return Rep{}, err
	}
	op := "+FLAGS.SILENT"
	if rep%2 == 1 {
		op = "-FLAGS.SILENT"
	}
	for i := range uint64(qresyncChanges) {
		seq := 1 + i*(exists-1)/(qresyncChanges-1)
		if _, err := changer.run(fmt.Sprintf("STORE %d %s (\\Flagged)", seq, op)); err != nil {
			return Rep{}, err
		}
	}
	changer.run("LOGOUT")

	c, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer c.conn.Close()
	if _, err := c.run("ENABLE QRESYNC"); err != nil {
		return Rep{}, err
	}
	start := time.Now()
	lines, err := c.run(fmt.Sprintf("SELECT %s (QRESYNC (%d %d))", imapQuote(b.Mailbox), validity, modseq))
	resync := time.Since(start)
	if err != nil {
		return Rep{}, err
	}
	fetches := 0
	for _, l := range lines {
		if strings.Contains(l, " FETCH (") {
			fetches++
		}
	}
	start = time.Now()
	all, err := c.run("FETCH 1:* (FLAGS)")
	full := time.Since(start)
	if err != nil {
		return Rep{}, err
	}
	c.run("LOGOUT")
	r := Rep{Value: resync.Seconds(), Seconds: resync.Seconds(), Count: fetches,
		FullSeconds: full.Seconds(), Ratio: resync.Seconds() / full.Seconds()}
	if fetches < qresyncChanges || len(all) < int(exists) {
		r.Errors++
		return r, fmt.Errorf("imap: resync sent %d FETCH responses for %d changes; FETCH 1:* %d of %d", fetches, qresyncChanges, len(all), exists)
	}
	return r, nil
}

// sortDate times SORT (DATE) UTF-8 ALL over the examined Mailbox; Count is the numbers
// in the answer, which must be every message.
func (b *Bench) sortDate(ctx context.Context, _ int) (Rep, error) {
	return b.timeExamined(ctx, "SORT (DATE) UTF-8 ALL", "* SORT")
}

// sortArrival is sortDate after one new message: another session APPENDs a message
// (sent in the middle of the mailbox's dates, so that it sorts among the others) and logs
// out, then a new session EXAMINEs Mailbox and SORT (DATE) UTF-8 ALL is timed: the first
// SORT after a change, which a server cannot answer from what it kept of the last one.
// The Mailbox grows by one message per repetition.
func (b *Bench) sortArrival(ctx context.Context, rep int) (Rep, error) {
	w, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	msg := fmt.Sprintf("From: new@example.test\r\nTo: bench@example.test\r\nSubject: arrival %d\r\n"+
		"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\nMessage-ID: <arrival-%d-%d@example.test>\r\n\r\nnew\r\n", rep, rep, time.Now().UnixNano())
	err = w.appendTwoWrites(imapQuote(b.Mailbox), []byte(msg))
	w.run("LOGOUT")
	w.conn.Close()
	if err != nil {
		return Rep{}, err
	}
	return b.timeExamined(ctx, "SORT (DATE) UTF-8 ALL", "* SORT")
}

// sortExpunge is sortDate after one message went: another session expunges the first
// message (as a POP3 client that downloads and deletes the oldest would), then a new
// session EXAMINEs Mailbox and SORT (DATE) UTF-8 ALL is timed. The Mailbox shrinks by one
// message per repetition.
func (b *Bench) sortExpunge(ctx context.Context, _ int) (Rep, error) {
	w, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	_, err = w.run("SELECT " + imapQuote(b.Mailbox))
	if err == nil {
		_, err = w.run(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	}
	if err == nil {
		_, err = w.run("EXPUNGE")
	}
	w.run("LOGOUT")
	w.conn.Close()
	if err != nil {
		return Rep{}, err
	}
	return b.timeExamined(ctx, "SORT (DATE) UTF-8 ALL", "* SORT")
}

// threadRefs times THREAD REFERENCES UTF-8 ALL over the examined Mailbox; Count is the
// message numbers in the answer, which must be every message.
func (b *Bench) threadRefs(ctx context.Context, _ int) (Rep, error) {
	return b.timeExamined(ctx, "THREAD REFERENCES UTF-8 ALL", "* THREAD")
}

// timeExamined EXAMINEs Mailbox, times cmd and counts the numbers of its untagged
// response prefix, which must be one per message.
func (b *Bench) timeExamined(ctx context.Context, cmd, prefix string) (Rep, error) {
	c, err := b.dialWire(ctx)
	if err != nil {
		return Rep{}, err
	}
	defer c.conn.Close()
	sel, err := c.run("EXAMINE " + imapQuote(b.Mailbox))
	if err != nil {
		return Rep{}, err
	}
	exists, _ := responseNumber(sel, reExists)
	start := time.Now()
	lines, err := c.run(cmd)
	d := time.Since(start)
	if err != nil {
		return Rep{}, err
	}
	c.run("LOGOUT")
	count := 0
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			count += len(strings.FieldsFunc(rest, func(r rune) bool { return r < '0' || r > '9' }))
		}
	}
	r := Rep{Value: d.Seconds(), Seconds: d.Seconds(), Count: count}
	if count != int(exists) {
		r.Errors++
		return r, fmt.Errorf("imap: %s answered %d of %d messages", cmd, count, exists)
	}
	return r, nil
}
