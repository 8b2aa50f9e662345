package threading

import (
	"bufio"
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// imaptestDir holds imaptest's scripts (Dovecot's IMAP compliance tester), beside the
// checkout as ../shared is for the acceptance suite. Its sort* and thread* scripts carry
// input messages (the .mbox beside each) and the SORT and THREAD answers Dovecot gives:
// they are run here against this package, without a server.
var imaptestDir = filepath.Join("..", "..", "..", "shared", "imaptest", "tests")

// TestImaptestVectors runs imaptest's SORT and THREAD scripts as test vectors. A script
// is read as imaptest does: a header ("messages: all", "state: created"), then commands
// each followed by the untagged answer expected. SORT and THREAD commands are checked,
// STORE \Deleted + EXPUNGE and APPEND change the mailbox, SORT RETURN (ESORT, PARTIAL)
// is the wire layer's and is left out.
func TestImaptestVectors(t *testing.T) {
	scripts, _ := filepath.Glob(filepath.Join(imaptestDir, "sort*"))
	threads, _ := filepath.Glob(filepath.Join(imaptestDir, "thread*"))
	scripts = append(scripts, threads...)
	var run []string
	for _, s := range scripts {
		if !strings.HasSuffix(s, ".mbox") {
			run = append(run, s)
		}
	}
	if len(run) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("imaptest scripts not found in %s, and CI must run them", imaptestDir)
		}
		t.Skipf("imaptest scripts not found in %s", imaptestDir)
	}
	total := 0
	for _, script := range run {
		t.Run(filepath.Base(script), func(t *testing.T) {
			checks := runImaptestScript(t, script)
			total += checks
			if checks == 0 && !strings.HasPrefix(filepath.Base(script), "sort-partial") {
				t.Errorf("no SORT or THREAD answer checked")
			}
		})
	}
	// Every vector counted: 8 SORT scripts with 3 to 9 checks, 12 THREAD scripts.
	t.Logf("%d SORT and THREAD answers checked", total)
	if total < 40 {
		t.Errorf("only %d answers checked", total)
	}
}

// runImaptestScript runs one script and returns how many answers it checked.
func runImaptestScript(t *testing.T, script string) int {
	t.Helper()
	text, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := readMbox(script + ".mbox")
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(string(text), "\n\n")
	var mailbox []Message
	deleted := map[int]bool{} // indexes in mailbox flagged \Deleted
	appended := 0
	appendNext := func() {
		if appended >= len(pool) {
			t.Fatalf("append: only %d messages in the mbox", len(pool))
		}
		m := pool[appended]
		appended++
		m.UID = uint32(appended)
		m.Seq = uint32(len(mailbox) + 1)
		mailbox = append(mailbox, m)
	}
	for _, line := range strings.Split(header, "\n") {
		k, v, _ := strings.Cut(line, ":")
		if strings.TrimSpace(k) != "messages" {
			continue
		}
		n := len(pool)
		if v = strings.TrimSpace(v); v != "all" {
			if n, err = strconv.Atoi(v); err != nil {
				t.Fatalf("header %q: %v", line, err)
			}
		}
		for range n {
			appendNext()
		}
	}

	checks := 0
	var command string // the sort or thread command waiting for its answer
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		lower := strings.ToLower(line)
		switch {
		case line == "":
		case strings.HasPrefix(lower, "* sort") || strings.HasPrefix(lower, "* thread"):
			if command == "" {
				continue // the answer of a command left out
			}
			checkImaptestAnswer(t, command, mailbox, line)
			checks++
			command = ""
		case strings.HasPrefix(lower, "ok sort return"), strings.HasPrefix(lower, "bad "),
			strings.HasPrefix(lower, "* esearch"):
			command = ""
		case strings.HasPrefix(lower, "ok sort "), strings.HasPrefix(lower, "ok thread "):
			command = line[len("ok "):]
		case strings.HasPrefix(lower, "ok append"):
			appendNext()
		case strings.HasPrefix(lower, "ok store "):
			// "ok store 1,2 +flags \deleted": the next expunge removes them.
			fields := strings.Fields(line)
			if len(fields) != 5 || !strings.EqualFold(fields[3], "+flags") || !strings.EqualFold(fields[4], `\deleted`) {
				t.Fatalf("unexpected store: %q", line)
			}
			for _, set := range strings.Split(fields[2], ",") {
				seq, err := strconv.Atoi(set)
				if err != nil || seq < 1 || seq > len(mailbox) {
					t.Fatalf("store %q: bad sequence number", line)
				}
				deleted[seq-1] = true
			}
		case lower == "ok expunge":
			kept := mailbox[:0]
			for i, m := range mailbox {
				if !deleted[i] {
					m.Seq = uint32(len(kept) + 1)
					kept = append(kept, m)
				}
			}
			mailbox = kept
			clear(deleted)
		case strings.HasPrefix(lower, "ok select"):
		default:
			t.Fatalf("script line not understood: %q", line)
		}
	}
	return checks
}

// checkImaptestAnswer runs command ("sort (date reverse size) us-ascii all" or "thread
// references us-ascii all") on mailbox and compares with the answer expected.
func checkImaptestAnswer(t *testing.T, command string, mailbox []Message, want string) {
	t.Helper()
	fields := strings.Fields(command)
	if fields[len(fields)-1] != "all" {
		t.Fatalf("%s: only ALL is understood", command)
	}
	var got string
	switch strings.ToLower(fields[0]) {
	case "sort":
		list := strings.Trim(strings.Join(fields[1:len(fields)-2], " "), "()")
		var keys []SortKey
		reverse := false
		for _, name := range strings.Fields(list) {
			if strings.EqualFold(name, "reverse") {
				reverse = true
				continue
			}
			c, err := ParseCriterion(name)
			if err != nil {
				t.Fatalf("%s: %v", command, err)
			}
			keys = append(keys, SortKey{Criterion: c, Reverse: reverse})
			reverse = false
		}
		order, err := Sort(mailbox, keys)
		if err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		nums := make([]string, len(order))
		for k, i := range order {
			nums[k] = strconv.Itoa(int(mailbox[i].Seq))
		}
		got = "* SORT " + strings.Join(nums, " ")
	case "thread":
		var threads []*Thread
		switch strings.ToLower(fields[1]) {
		case "references":
			threads = References(mailbox)
		case "orderedsubject":
			threads = OrderedSubject(mailbox)
		default:
			t.Fatalf("%s: unknown algorithm", command)
		}
		got = "* THREAD " + bySeq(mailbox, threads)
	}
	if !strings.EqualFold(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", command, got, want)
	}
}

// readMbox reads the messages of an imaptest .mbox: each starts with a "From " line
// whose date is its INTERNALDATE ("Fri Feb 22 23:00:00 2008 +0200", no zone meaning UTC).
func readMbox(path string) ([]Message, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var msgs []Message
	var from string
	var lines []string
	flush := func() error {
		if from == "" {
			return nil
		}
		for len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		m, err := parseTestMessage(from, strings.Join(lines, "\r\n")+"\r\n")
		if err != nil {
			return fmt.Errorf("%s, message %d: %w", path, len(msgs)+1, err)
		}
		msgs = append(msgs, m)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "From ") {
			if err := flush(); err != nil {
				return nil, err
			}
			from, lines = line, nil
			continue
		}
		lines = append(lines, line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return msgs, sc.Err()
}

var wordDecoder = &mime.WordDecoder{}

// parseTestMessage builds a Message as the IMAP layer would from the store: decoded
// subject, first addresses as the ENVELOPE has them, Date or zero, msg-ids.
func parseTestMessage(fromLine, raw string) (Message, error) {
	// "From user@domain  Fri Feb 22 23:00:00 2008 +0200"
	fields := strings.Fields(fromLine)
	if len(fields) < 7 {
		return Message{}, fmt.Errorf("mbox From line %q", fromLine)
	}
	stamp := strings.Join(fields[2:7], " ")
	layout := "Mon Jan 2 15:04:05 2006"
	if len(fields) >= 8 {
		stamp += " " + fields[7]
		layout += " -0700"
	}
	internal, err := time.Parse(layout, stamp)
	if err != nil {
		return Message{}, fmt.Errorf("mbox From line date: %w", err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("parse header: %w", err)
	}
	h := msg.Header
	m := Message{InternalDate: internal, Size: int64(len(raw))}
	if d, err := mail.ParseDate(h.Get("Date")); err == nil {
		m.Date = d
	}
	if s, err := wordDecoder.DecodeHeader(h.Get("Subject")); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	m.From = firstAddress(h.Get("From"))
	m.To = firstAddress(h.Get("To"))
	m.Cc = firstAddress(h.Get("Cc"))
	if ids := mailmsg.ParseMessageIDs(h.Get("Message-Id")); len(ids) > 0 {
		m.MessageID = ids[0]
	}
	m.InReplyTo = mailmsg.ParseMessageIDs(h.Get("In-Reply-To"))
	m.References = mailmsg.ParseMessageIDs(h.Get("References"))
	return m, nil
}

// firstAddress is the first address of an address list field as an IMAP ENVELOPE
// gives it: for group syntax ("team: a@b, c@d;") the group start, whose mailbox is the
// group name; an address without a domain keeps its mailbox alone.
func firstAddress(v string) Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return Address{}
	}
	if i := strings.IndexByte(v, ':'); i > 0 && !strings.ContainsAny(v[:i], `<>@",`) {
		return Address{Mailbox: strings.TrimSpace(v[:i])}
	}
	parser := mail.AddressParser{WordDecoder: wordDecoder}
	list, err := parser.ParseList(v)
	if err != nil || len(list) == 0 {
		return Address{Mailbox: v}
	}
	a := Address{Name: list[0].Name}
	if i := strings.LastIndexByte(list[0].Address, '@'); i >= 0 {
		a.Mailbox, a.Host = list[0].Address[:i], list[0].Address[i+1:]
	} else {
		a.Mailbox = list[0].Address
	}
	return a
}
