package main

// The migration proof: a real Dovecot (Debian's) on loopback takes mail by LMTP and IMAP,
// clients see its UIDs, UIDLs, flags, dates and bytes; `letterbox import` of its Maildir
// must make Letterbox show exactly the same.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
)

const (
	migrationUser     = "bob@example.test"
	migrationPassword = "migrate-secret"
)

// migrationFolders are the folders compared; Sent is one of the folders every Letterbox
// account already has (empty), which the import must adopt with Dovecot's UIDVALIDITY.
var migrationFolders = []string{"INBOX", "Sent", "Work", "Work/Clients"}

// needDovecot returns the dovecot binary, skipping the test where Dovecot cannot run
// (absent, or not root: it is started as root, as a system would) unless in CI.
func needDovecot(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr == nil {
			bin, err = "/usr/sbin/dovecot", nil
		}
	}
	reason := ""
	switch {
	case err != nil:
		reason = "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd)"
	case os.Geteuid() != 0:
		reason = "dovecot is started as root here, and this test does not run as root"
	}
	if reason != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(reason + " (.ci/run must provide it)")
		}
		t.Skip(reason)
	}
	return bin
}

// dovecotServer is a private Dovecot on loopback ports, with its own everything in dir.
type dovecotServer struct {
	imap, pop3, lmtp string
	home             string // the user's home; mail is in home/Maildir
	cmd              *exec.Cmd
	done             chan error
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDovecot starts a Dovecot for migrationUser; with maildir, that tree is moved in as
// the user's mail first.
func startDovecot(t *testing.T, bin, maildir string) *dovecotServer {
	t.Helper()
	// Dovecot's login and mail processes run unprivileged and must traverse the directory,
	// which t.TempDir would make private.
	dir, err := os.MkdirTemp("", "letterbox-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dovecotServer{imap: freePort(t), pop3: freePort(t), lmtp: freePort(t), home: filepath.Join(dir, "home"), done: make(chan error, 1)}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nobody := lookupIDs(t, "nobody")
	if maildir != "" {
		if err := os.Rename(maildir, filepath.Join(d.home, "Maildir")); err != nil {
			t.Fatal(err)
		}
	}
	err = filepath.Walk(d.home, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, nobody[0], nobody[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::\n", migrationUser, migrationPassword, nobody[0], nobody[1], d.home)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	conf := fmt.Sprintf(`# A private Dovecot for the migration test; nothing shared with the system's.
instance_name = letterbox-migration-test
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/passwd
}
# The layout import reads: Maildir++ under ~/Maildir. IMAP shows "/" as the hierarchy
# delimiter, as Letterbox does, while the disk keeps Maildir++ names (.Work.Clients).
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
# Dovecot's default, stated: the UIDLs clients remember.
pop3_uidl_format = %%08Xu%%08Xv
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]s
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[3]s
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[4]s
  }
}
`, dir, port(d.imap), port(d.pop3), port(d.lmtp))
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d.cmd = exec.Command(bin, "-F", "-c", confPath)
	d.cmd.Stdout, d.cmd.Stderr = &out, &out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })
	for _, addr := range []string{d.imap, d.pop3, d.lmtp} {
		if !waitListening(addr) {
			logText, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot does not listen on %s\n%s\n%s", addr, out.String(), logText)
		}
	}
	return d
}

// stop ends Dovecot (SIGTERM to its master process) and waits for it, so that its
// Maildir is complete on disk.
func (d *dovecotServer) stop(t *testing.T) {
	if d.cmd.ProcessState != nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second): // a hang guard, not a timing check
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Error("dovecot did not stop on SIGTERM")
	}
}

func waitListening(addr string) bool {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func lookupIDs(t *testing.T, user string) [2]int {
	t.Helper()
	var ids [2]int
	for i, flag := range []string{"-u", "-g"} {
		out, err := exec.Command("id", flag, user).Output()
		if err != nil {
			t.Fatalf("id %s %s: %v", flag, user, err)
		}
		ids[i], err = strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// migrationMessages are delivered by LMTP: plain, multipart/alternative, multipart/mixed
// with a base64 attachment, 8-bit UTF-8, and one without a final newline.
var migrationMessages = []string{
	"From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: plain\r\nDate: Mon, 15 Jan 2024 09:30:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\nHello Bob.\r\n",
	"From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: alternative\r\nMessage-ID: <m2@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\npreamble\r\n--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain part\r\n" +
		"--alt\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>html part</p>\r\n--alt--\r\n",
	"From: Carol <carol@example.net>\r\nTo: bob@example.test\r\nSubject: attachment\r\nMessage-ID: <m3@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--mix\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n" +
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\nOTo7PD0+P0BBQkNERUZHSElKS0xNTk9Q\r\n--mix--\r\n",
	"From: Dave <dave@example.com>\r\nTo: bob@example.test\r\nSubject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m4@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln.\r\n",
	"From: Eve <eve@example.com>\r\nTo: bob@example.test\r\nSubject: to be expunged\r\nMessage-ID: <m5@example.org>\r\n\r\ngone soon\r\n",
	"From: Eve <eve@example.com>\r\nTo: bob@example.test\r\nSubject: flagged deleted, kept\r\nMessage-ID: <m6@example.org>\r\n\r\nstill here",
}

func lmtpSend(t *testing.T, addr, rcpt, msg string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("migration.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@example.org", []string{rcpt}, strings.NewReader(msg)); err != nil {
		t.Fatalf("LMTP delivery: %v", err)
	}
	c.Quit()
}

// populateDovecot fills the account as a user's clients would over the years: LMTP
// deliveries, folders (one nested), APPEND with dates and flags, COPY, flags and keywords
// set by STORE, an EXPUNGE in the middle (a UID gap) and a \Deleted message kept.
func populateDovecot(t *testing.T, d *dovecotServer) {
	for _, m := range migrationMessages[:5] {
		lmtpSend(t, d.lmtp, migrationUser, m)
	}
	c := imapLogin(t, d.imap, migrationUser, migrationPassword)
	for _, name := range migrationFolders[1:] {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	appendAt := func(mailbox, msg string, date time.Time, flags ...imap.Flag) {
		cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: date})
		if _, err := cmd.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("APPEND %s: %v", mailbox, err)
		}
	}
	berlin := time.FixedZone("", 3600)
	appendAt("Work/Clients", e2eMessage("<c1@example.org>", "client one", "Contract attached."), time.Date(2023, 11, 20, 14, 5, 9, 0, berlin), imap.FlagSeen, "$Label1", "ClientX")
	appendAt("Work/Clients", e2eMessage("<c2@example.org>", "client two", "Invoice."), time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), imap.FlagFlagged, "ClientX")
	appendAt("Work", e2eMessage("<w1@example.org>", "work", "Minutes."), time.Date(2024, 3, 10, 8, 0, 0, 0, time.UTC))
	appendAt("Sent", e2eMessage("<s1@example.org>", "sent", "My reply."), time.Date(2024, 3, 11, 12, 0, 0, 0, time.UTC), imap.FlagSeen)

	imapStoreFlags(t, c, "INBOX", 1, imap.StoreFlagsAdd, imap.FlagSeen, imap.FlagAnswered, "$Label1")
	imapStoreFlags(t, c, "INBOX", 2, imap.StoreFlagsAdd, imap.FlagFlagged, "Project")
	imapStoreFlags(t, c, "INBOX", 4, imap.StoreFlagsAdd, imap.FlagSeen, imap.FlagDraft, "$Label2")
	imapStoreFlags(t, c, "INBOX", 3, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.Expunge().Close(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	if _, err := c.Copy(imap.UIDSetNum(2), "Work").Wait(); err != nil {
		t.Fatalf("UID COPY: %v", err)
	}
	imapStoreFlags(t, c, "Work", 1, imap.StoreFlagsAdd, imap.FlagSeen)
	// The last UID of Work expunged: its UIDNEXT (4) is above its last message's UID + 1.
	appendAt("Work", e2eMessage("<w2@example.org>", "short-lived", "Gone."), time.Date(2024, 3, 12, 8, 0, 0, 0, time.UTC))
	imapStoreFlags(t, c, "Work", 3, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.Expunge().Close(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	// After the expunge: UIDs 1 2 4 5 6 in INBOX.
	lmtpSend(t, d.lmtp, migrationUser, migrationMessages[5])
	imapStoreFlags(t, c, "INBOX", 6, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
}

// TestDovecotMigration records what POP3 and IMAP clients see of a Dovecot account,
// imports its Maildir into Letterbox, and compares what the same clients see there; then
// exports the account from Letterbox, serves the export with a new Dovecot, and compares
// again.
//
// What is normalised, and why:
//   - IMAP FETCH items are put in one order (UID FLAGS INTERNALDATE RFC822.SIZE BODY[]):
//     RFC 3501 §7.4.2 lets a server return them in any order.
//   - FLAGS are sorted and \Recent is dropped: flags are a set, and \Recent is a session
//     property (RFC 3501 §2.3.2) that no migration carries over.
//   - A string may come as a quoted string or a literal (RFC 3501 §4.3); the text compares.
//   - STATUS items are sorted and the mailbox name is compared unquoted (§7.2.4, §4.3).
//
// Everything else (UIDs, UIDVALIDITY, UIDNEXT, flags and keywords, INTERNALDATE with its
// zone, sizes, every byte of every message, the POP3 UIDL and LIST lines) must be equal.
func TestDovecotMigration(t *testing.T) {
	bin := needDovecot(t)
	d := startDovecot(t, bin, "")
	populateDovecot(t, d)
	before := recordClients(t, d.imap, d.pop3)
	d.stop(t)

	maildir := filepath.Join(d.home, "Maildir")
	for _, want := range []string{"dovecot-uidlist", ".Work.Clients/dovecot-uidlist", ".Work.Clients/dovecot-keywords"} {
		if _, err := os.Stat(filepath.Join(maildir, want)); err != nil {
			t.Fatalf("Dovecot left no %s: %v", want, err)
		}
	}

	data := t.TempDir()
	expectCode(t, lb(t, nil, migrationPassword+"\n", "user", "add", migrationUser, "--password-stdin", "--data", data), 0, "user add")
	r := lb(t, nil, "", "import", "--user", migrationUser, maildir, "--data", data)
	expectCode(t, r, 0, "import")
	t.Logf("import: %s", r.stdout)

	srv := startE2E(t, data)
	after := recordClients(t, srv.ports["imap"], srv.ports["pop3"])
	compareTranscripts(t, before, after)

	// Importing again changes nothing: what is there is skipped.
	srv.kill()
	r = lb(t, nil, "", "import", "--user", migrationUser, maildir, "--data", data)
	expectCode(t, r, 0, "second import")
	if !strings.Contains(r.stdout, "imported 0 messages") {
		t.Errorf("second import: %s", r.stdout)
	}
	srv = startE2E(t, data)
	compareTranscripts(t, before, recordClients(t, srv.ports["imap"], srv.ports["pop3"]))

	// And back: Letterbox's export (taken while it serves), served by a new Dovecot, shows
	// the same again.
	export := filepath.Join(t.TempDir(), "Maildir")
	if out, code := srv.cli("", "export", "--user", migrationUser, export); code != 0 {
		t.Fatalf("export: exit %d: %s", code, out)
	}
	back := startDovecot(t, bin, export)
	compareTranscripts(t, before, recordClients(t, back.imap, back.pop3))
}

func compareTranscripts(t *testing.T, dovecot, letterbox []string) {
	t.Helper()
	if slices.Equal(dovecot, letterbox) {
		return
	}
	for i := 0; i < max(len(dovecot), len(letterbox)); i++ {
		var a, b string
		if i < len(dovecot) {
			a = dovecot[i]
		}
		if i < len(letterbox) {
			b = letterbox[i]
		}
		if a != b {
			t.Errorf("line %d differs:\ndovecot:   %q\nletterbox: %q", i+1, a, b)
		}
	}
	t.Fatalf("Letterbox shows the migrated account differently from Dovecot")
}

// recordClients is what POP3 and IMAP clients see: POP3 UIDL and LIST of INBOX, and per
// folder IMAP STATUS (UIDVALIDITY UIDNEXT MESSAGES) and UID FETCH 1:* of everything a
// client caches, normalised as TestDovecotMigration says.
func recordClients(t *testing.T, imapAddr, pop3Addr string) []string {
	t.Helper()
	var out []string
	tp := dialPOP3(t, pop3Addr, migrationUser, migrationPassword)
	for _, cmd := range []string{"UIDL", "LIST"} {
		pop3Cmd(t, tp, "%s", cmd)
		lines, err := tp.ReadDotLines()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			out = append(out, "POP3 "+cmd+" "+l)
		}
	}
	pop3Cmd(t, tp, "QUIT")

	c := dialIMAP(t, imapAddr)
	c.command("l", "LOGIN "+migrationUser+" "+migrationPassword)
	for _, name := range migrationFolders {
		for _, resp := range c.command("s", `STATUS "`+name+`" (UIDVALIDITY UIDNEXT MESSAGES)`) {
			out = append(out, normaliseStatus(t, resp))
		}
		c.command("e", `EXAMINE "`+name+`"`)
		for _, resp := range c.command("f", "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])") {
			out = append(out, name+" "+normaliseFetch(t, resp))
		}
	}
	c.command("o", "LOGOUT")
	return out
}

// rawIMAP is an IMAP connection read as bytes, literals included, for exact comparison.
type rawIMAP struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialIMAP(t *testing.T, addr string) *rawIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	ri := &rawIMAP{t: t, c: c, r: bufio.NewReader(c)}
	ri.response() // greeting
	return ri
}

// response reads one response: a line, with any literals ({n}) and the lines after them.
func (ri *rawIMAP) response() []byte {
	ri.t.Helper()
	var resp []byte
	for {
		line, err := ri.r.ReadBytes('\n')
		if err != nil {
			ri.t.Fatalf("IMAP read: %v (after %q)", err, resp)
		}
		resp = append(resp, line...)
		trimmed := bytes.TrimRight(line, "\r\n")
		if !bytes.HasSuffix(trimmed, []byte("}")) {
			return resp
		}
		open := bytes.LastIndexByte(trimmed, '{')
		n, err := strconv.Atoi(string(trimmed[open+1 : len(trimmed)-1]))
		if open < 0 || err != nil {
			return resp
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(ri.r, lit); err != nil {
			ri.t.Fatalf("IMAP literal: %v", err)
		}
		resp = append(resp, lit...)
	}
}

// command sends a tagged command and returns its untagged responses; the tagged response
// must be OK.
func (ri *rawIMAP) command(tag, cmd string) [][]byte {
	ri.t.Helper()
	if _, err := fmt.Fprintf(ri.c, "%s %s\r\n", tag, cmd); err != nil {
		ri.t.Fatal(err)
	}
	var untagged [][]byte
	for {
		resp := ri.response()
		if bytes.HasPrefix(resp, []byte(tag+" ")) {
			if !bytes.HasPrefix(resp, []byte(tag+" OK")) {
				ri.t.Fatalf("%s: %s", cmd, resp)
			}
			return untagged
		}
		untagged = append(untagged, resp)
	}
}

// imapTokens splits the inside of a parenthesised IMAP list into values: atoms (with any
// [section]), quoted strings (unquoted), literals (their bytes) and nested lists (as
// written). Enough of RFC 3501 §9's grammar for FETCH and STATUS responses.
func imapTokens(t *testing.T, b []byte) []string {
	var out []string
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == ' ':
			i++
		case c == '"':
			var s []byte
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
				s = append(s, b[i])
			}
			out = append(out, string(s))
			i++
		case c == '(':
			depth, j := 0, i
			for ; j < len(b); j++ {
				if b[j] == '(' {
					depth++
				} else if b[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			out = append(out, string(b[i:j+1]))
			i = j + 1
		case c == '{':
			end := bytes.IndexByte(b[i:], '}')
			n, err := strconv.Atoi(string(b[i+1 : i+end]))
			if err != nil {
				t.Fatalf("bad literal in %q", b)
			}
			start := i + end + 3 // past "}\r\n"
			out = append(out, string(b[start:start+n]))
			i = start + n
		default:
			j := i
			depth := 0
			for ; j < len(b) && (depth > 0 || (b[j] != ' ' && b[j] != ')')); j++ {
				if b[j] == '[' {
					depth++
				} else if b[j] == ']' {
					depth--
				}
			}
			out = append(out, string(b[i:j]))
			i = j
		}
	}
	return out
}

// normaliseFetch turns "* n FETCH (...)" into "* n FETCH UID .. FLAGS (..) INTERNALDATE ..
// RFC822.SIZE .. BODY[] {n}<bytes>".
func normaliseFetch(t *testing.T, resp []byte) string {
	t.Helper()
	head, rest, ok := bytes.Cut(resp, []byte(" FETCH ("))
	end := bytes.LastIndexByte(rest, ')')
	if !ok || end < 0 {
		t.Fatalf("not a FETCH response: %q", resp)
	}
	tokens := imapTokens(t, rest[:end])
	items := map[string]string{}
	for i := 0; i+1 < len(tokens); i += 2 {
		items[strings.ToUpper(tokens[i])] = tokens[i+1]
	}
	var flags []string
	for _, f := range strings.Fields(strings.Trim(items["FLAGS"], "()")) {
		if !strings.EqualFold(f, `\Recent`) {
			flags = append(flags, f)
		}
	}
	slices.Sort(flags)
	body := items["BODY[]"]
	// RFC 3501 §9 date-day-fixed is (SP DIGIT) / 2DIGIT: Dovecot writes "06-Dec-2026",
	// imapserver " 6-Dec-2026", both right; on the 1st to 9th of a month they differ.
	date := items["INTERNALDATE"]
	if len(date) > 1 && date[0] == ' ' {
		date = "0" + date[1:]
	}
	return fmt.Sprintf("%s FETCH UID %s FLAGS (%s) INTERNALDATE %q RFC822.SIZE %s BODY[] {%d}%q",
		head, items["UID"], strings.Join(flags, " "), date, items["RFC822.SIZE"], len(body), body)
}

// normaliseStatus turns "* STATUS name (k v ...)" into "STATUS name k v ..." with the
// items sorted.
func normaliseStatus(t *testing.T, resp []byte) string {
	t.Helper()
	rest, ok := bytes.CutPrefix(bytes.TrimRight(resp, "\r\n"), []byte("* STATUS "))
	if !ok {
		return "untagged " + string(bytes.TrimRight(resp, "\r\n"))
	}
	tokens := imapTokens(t, rest)
	if len(tokens) != 2 {
		t.Fatalf("STATUS response %q", resp)
	}
	kv := imapTokens(t, []byte(strings.Trim(tokens[1], "()")))
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, strings.ToUpper(kv[i])+" "+kv[i+1])
	}
	slices.Sort(pairs)
	return "STATUS " + tokens[0] + " " + strings.Join(pairs, " ")
}
