package main

// End-to-end tests of IMAP with clients nobody here wrote: Python's imaplib, curl, and a
// two-way mbsync (isync) between the server and a local Maildir. They reuse the harness in
// clients_test.go (startE2E, needCommand).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestIMAPWithPythonImaplib runs testdata/e2e/imap_clients.py: LMTP delivery, then imaplib
// LIST, SELECT, FETCH (ENVELOPE, BODYSTRUCTURE, byte-identical BODY[]), STORE, SEARCH,
// CREATE, UID COPY/MOVE, APPEND, EXPUNGE, and IDLE hearing an LMTP delivery and a POP3
// deletion.
func TestIMAPWithPythonImaplib(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "python3")
	srv := startE2E(t, t.TempDir())
	srv.addUser("bob@example.net", "bob-secret")

	script, _ := filepath.Abs("../../testdata/e2e/imap_clients.py")
	py := exec.Command("python3", script, port(srv.ports["lmtp"]), port(srv.ports["imap"]),
		port(srv.ports["pop3"]), "bob@example.net", "bob-secret")
	if out, err := py.CombinedOutput(); err != nil {
		t.Fatalf("python imaplib: %v\n%s\nserver log:\n%s", err, out, srv.log.String())
	}
}

// TestIMAPWithCurl logs in, lists, deletes, fetches, searches and uploads with curl's IMAP
// support.
func TestIMAPWithCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "curl")
	srv := startE2E(t, t.TempDir())
	const user, pass = "dave@example.net", "dave-secret"
	srv.addUser(user, pass)
	msgs := []string{
		e2eMessage("<1.curl@letterbox.test>", "Draft to discard", "Zeroth."),
		e2eMessage("<2.curl@letterbox.test>", "hello world", "First."),
		e2eMessage("<3.curl@letterbox.test>", "Quarterly report", "Second."),
		e2eMessage("<4.curl@letterbox.test>", "Re: Hello again", "Third."),
	}
	for _, m := range msgs {
		srv.deliver(user, "", m)
	}

	base := "imap://" + srv.ports["imap"] + "/"
	curl := func(args ...string) string {
		t.Helper()
		c := exec.Command("curl", append([]string{"-sS", "--max-time", "20", "-u", user + ":" + pass}, args...)...)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s\nserver log:\n%s", args, err, out, srv.log.String())
		}
		return string(out)
	}

	// curl logs in with AUTHENTICATE PLAIN and an initial response (SASL-IR) unless told
	// otherwise; AUTH=LOGIN exercises Letterbox's own server side of SASL LOGIN. A wrong
	// password is curl's exit 67, "login denied".
	bad := exec.Command("curl", "-sS", "--max-time", "20", "-u", user+":wrong", "--login-options", "AUTH=LOGIN", base)
	if out, err := bad.CombinedOutput(); bad.ProcessState == nil || bad.ProcessState.ExitCode() != 67 {
		t.Fatalf("curl with a wrong password: %v, want exit 67 (login denied)\n%s", err, out)
	}

	// "imap://host/" lists the mailboxes: every account has the special-use folders.
	listing := curl("--login-options", "AUTH=LOGIN", base)
	for name, use := range map[string]string{"INBOX": "", "Sent": `\Sent`, "Drafts": `\Drafts`,
		"Trash": `\Trash`, "Junk": `\Junk`, "Archives": `\Archive`} {
		line := regexp.MustCompile(`(?m)^\* LIST \(([^)]*)\) "/" "?` + name + `"?\r?$`).FindStringSubmatch(listing)
		if line == nil || use != "" && !strings.Contains(" "+line[1]+" ", " "+use+" ") {
			t.Errorf("curl LIST: want %s with attribute %q in\n%s", name, use, listing)
		}
	}

	// Custom commands run in the mailbox of the URL: delete the first message, so that
	// UIDs and sequence numbers differ from here on.
	curl("-X", `UID STORE 1 +FLAGS (\Deleted)`, base+"INBOX")
	curl("-X", "EXPUNGE", base+"INBOX")

	// ";UID=3" fetches the whole message (UID FETCH BODY[]): byte for byte what was delivered.
	if got := curl(base + "INBOX;UID=3"); got != msgs[2] {
		t.Fatalf("curl INBOX;UID=3:\n%q\nwant\n%q", got, msgs[2])
	}
	// SEARCH is case-insensitive on the subject, and UID SEARCH answers UIDs.
	if got := strings.TrimSpace(curl("-X", "UID SEARCH SUBJECT hello", base+"INBOX")); got != "* SEARCH 2 4" {
		t.Fatalf("curl UID SEARCH SUBJECT hello = %q, want * SEARCH 2 4", got)
	}
	// curl's fetch was not a PEEK, so it set \Seen (RFC 3501 §6.4.5).
	if got := strings.TrimSpace(curl("-X", "UID SEARCH SEEN", base+"INBOX")); got != "* SEARCH 3" {
		t.Fatalf("after curl fetched UID 3, UID SEARCH SEEN = %q", got)
	}

	// "-T file imap://host/Sent" APPENDs (as a mail program files what it sent).
	sent := e2eMessage("<4.curl@letterbox.test>", "Uploaded by curl", "Filed in Sent.")
	file := filepath.Join(t.TempDir(), "sent.eml")
	if err := os.WriteFile(file, []byte(sent), 0o600); err != nil {
		t.Fatal(err)
	}
	curl("-T", file, base+"Sent")
	if got := curl(base + "Sent;UID=1"); got != sent {
		t.Fatalf("curl Sent;UID=1 after the upload:\n%q\nwant\n%q", got, sent)
	}
	// And an ordinary IMAP client sees the same: one message in Sent, \Seen as curl asked.
	state := imapState(t, srv.ports["imap"], user, pass)
	if got := state["Sent"].Messages; !reflect.DeepEqual(got, map[imap.UID]messageState{
		1: {MessageID: "<4.curl@letterbox.test>", Flags: `\Seen`}}) {
		t.Fatalf("Sent over IMAP after curl's upload: %v", got)
	}
	if got := state["INBOX"].Messages; len(got) != 3 || got[3].Flags != `\Seen` || got[2].Flags != "" || got[4].Flags != "" {
		t.Fatalf("INBOX over IMAP after curl: %v", got)
	}
}

// TestMbsyncTwoWay syncs an account with folders and flags to a local Maildir with mbsync,
// changes both sides, syncs again, checks that both sides agree, and then that one more run
// changes nothing on either side.
func TestMbsyncTwoWay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	needCommand(t, "mbsync")
	srv := startE2E(t, t.TempDir())
	const user, pass = "erin@example.net", "erin-secret"
	srv.addUser(user, pass)

	// The server side: INBOX by delivery, two folders by APPEND, flags and a keyword.
	for _, id := range []string{"in1", "in2", "in3"} {
		srv.deliver(user, "", e2eMessage("<"+id+"@sync.test>", "inbox "+id, "Body of "+id+"."))
	}
	c := imapLogin(t, srv.ports["imap"], user, pass)
	for _, name := range []string{"Work", "Work/Clients"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	imapAppend(t, c, "Work", "<w1@sync.test>", imap.FlagSeen, imap.FlagFlagged, "$label")
	imapAppend(t, c, "Work/Clients", "<c1@sync.test>", imap.FlagSeen)
	imapAppend(t, c, "Work/Clients", "<c2@sync.test>")
	imapStoreFlags(t, c, "INBOX", 1, imap.StoreFlagsAdd, imap.FlagSeen)
	imapStoreFlags(t, c, "INBOX", 2, imap.StoreFlagsAdd, imap.FlagFlagged, "$label")
	c.Close()

	dir := t.TempDir()
	local := maildirs{inbox: filepath.Join(dir, "inbox"), root: filepath.Join(dir, "mail")}
	config := filepath.Join(dir, "mbsyncrc")
	writeMbsyncrc(t, config, srv.ports["imap"], user, pass, local)
	empty := map[string]string{}

	// First run: everything comes down, flags as Maildir info letters (S, F). mbsync
	// uses COMPRESS=DEFLATE (RFC 4978) when it is announced, so every run below goes
	// over DEFLATE; the server's command count says it did.
	runMbsync(t, srv, config)
	if n := compressCommands(t, srv); n < 1 {
		t.Fatalf("mbsync did not use COMPRESS DEFLATE (%d COMPRESS commands counted)", n)
	}
	want := map[string]map[string]string{
		"INBOX":        {"<in1@sync.test>": "S", "<in2@sync.test>": "F", "<in3@sync.test>": ""},
		"Work":         {"<w1@sync.test>": "FS"},
		"Work/Clients": {"<c1@sync.test>": "S", "<c2@sync.test>": ""},
		"Sent":         empty, "Drafts": empty, "Trash": empty, "Junk": empty, "Archives": empty,
	}
	checkSynced(t, srv, user, pass, local, want, "after the first run")

	// Changes on both sides. Locally, as a mail program using the Maildir would: flag a
	// message (rename its info to :2,FS), delete one, and make a folder with two messages.
	_, paths := local.view(t)
	renameInfo(t, paths["<in1@sync.test>"], "FS")
	if err := os.Remove(paths["<c1@sync.test>"]); err != nil {
		t.Fatal(err)
	}
	personal := filepath.Join(local.root, "Personal")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(personal, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(personal, "new", "1700000000.1_1.localhost"), e2eMessage("<p1@sync.test>", "local new", "Written locally."))
	writeFile(t, filepath.Join(personal, "cur", "1700000000.2_1.localhost:2,S"), e2eMessage("<p2@sync.test>", "local read", "Read locally."))
	// Remotely: a delivery, and flags changed by another IMAP client.
	srv.deliver(user, "", e2eMessage("<in4@sync.test>", "inbox in4", "Arrived between syncs."))
	c = imapLogin(t, srv.ports["imap"], user, pass)
	imapStoreFlags(t, c, "INBOX", 3, imap.StoreFlagsAdd, imap.FlagAnswered)
	imapStoreFlags(t, c, "Work", 1, imap.StoreFlagsDel, imap.FlagSeen)
	imapStoreFlags(t, c, "Work/Clients", 2, imap.StoreFlagsAdd, imap.FlagFlagged)
	c.Close()

	// Second run: both sides converge on the union of the changes.
	runMbsync(t, srv, config)
	want = map[string]map[string]string{
		"INBOX":        {"<in1@sync.test>": "FS", "<in2@sync.test>": "F", "<in3@sync.test>": "R", "<in4@sync.test>": ""},
		"Work":         {"<w1@sync.test>": "F"},
		"Work/Clients": {"<c2@sync.test>": "F"},
		"Personal":     {"<p1@sync.test>": "", "<p2@sync.test>": "S"},
		"Sent":         empty, "Drafts": empty, "Trash": empty, "Junk": empty, "Archives": empty,
	}
	checkSynced(t, srv, user, pass, local, want, "after the second run")
	// mbsync 1.4 does not sync keywords, and must not lose them either.
	state := imapState(t, srv.ports["imap"], user, pass)
	if got := state["Work"].Messages[1].Flags; got != `$label \Flagged` {
		t.Errorf("Work UID 1 flags on the server = %q, want $label \\Flagged", got)
	}

	// Third run on a converged state: nothing changes, locally (every file name and byte,
	// mbsync's own state included) or on the server (UIDVALIDITY, UIDNEXT, UIDs and flags).
	beforeLocal, beforeServer := snapshotDir(t, dir), imapState(t, srv.ports["imap"], user, pass)
	runMbsync(t, srv, config)
	afterLocal, afterServer := snapshotDir(t, dir), imapState(t, srv.ports["imap"], user, pass)
	if !reflect.DeepEqual(beforeLocal, afterLocal) {
		t.Errorf("a sync of converged state changed the Maildir:\nbefore %v\nafter  %v", beforeLocal, afterLocal)
	}
	if !reflect.DeepEqual(beforeServer, afterServer) {
		t.Errorf("a sync of converged state changed the server:\nbefore %v\nafter  %v", beforeServer, afterServer)
	}
}

// compressCommands is how many COMPRESS commands the server has run, from its metrics.
func compressCommands(t *testing.T, srv *e2eServer) int {
	t.Helper()
	resp, err := http.Get("http://" + srv.ports["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^letterbox_commands_total\{command="compress",protocol="imap"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// e2eMessage is a small RFC 5322 message with CRLF line ends.
func e2eMessage(messageID, subject, body string) string {
	return "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: " + subject +
		"\r\nDate: Mon, 15 Jan 2024 09:30:00 +0000\r\nMessage-ID: " + messageID + "\r\n\r\n" + body + "\r\n"
}

// deliver stores a message with `letterbox deliver`, a second process next to serve.
func (s *e2eServer) deliver(to, mailbox, message string) {
	s.t.Helper()
	args := []string{"deliver", "--to", to}
	if mailbox != "" {
		args = append(args, "--mailbox", mailbox)
	}
	if out, code := s.cli(message, args...); code != 0 {
		s.t.Fatalf("letterbox deliver: exit %d: %s", code, out)
	}
}

func imapLogin(t *testing.T, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("LOGIN %s: %v", user, err)
	}
	return c
}

func imapAppend(t *testing.T, c *imapclient.Client, mailbox, messageID string, flags ...imap.Flag) {
	t.Helper()
	msg := e2eMessage(messageID, "appended to "+mailbox, "Filed by APPEND.")
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC)})
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

func imapStoreFlags(t *testing.T, c *imapclient.Client, mailbox string, uid imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("UID STORE %d in %s: %v", uid, mailbox, err)
	}
}

// folderState is what an IMAP client can see of a folder without changing it.
type folderState struct {
	UIDValidity uint32
	UIDNext     imap.UID
	Messages    map[imap.UID]messageState
}

type messageState struct {
	MessageID string
	Flags     string // sorted, space-separated
}

// imapState reads every folder with EXAMINE and FETCH, in a session of its own.
func imapState(t *testing.T, addr, user, pass string) map[string]folderState {
	t.Helper()
	c := imapLogin(t, addr, user, pass)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	state := map[string]folderState{}
	for _, mbox := range list {
		sel, err := c.Select(mbox.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("EXAMINE %s: %v", mbox.Mailbox, err)
		}
		f := folderState{UIDValidity: sel.UIDValidity, UIDNext: sel.UIDNext, Messages: map[imap.UID]messageState{}}
		if sel.NumMessages > 0 {
			var all imap.SeqSet
			all.AddRange(1, 0)
			msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
			if err != nil {
				t.Fatalf("FETCH in %s: %v", mbox.Mailbox, err)
			}
			for _, m := range msgs {
				var flags []string
				for _, fl := range m.Flags {
					if !strings.EqualFold(string(fl), `\Recent`) { // the session's, not the mail's
						flags = append(flags, string(fl))
					}
				}
				sort.Strings(flags)
				f.Messages[m.UID] = messageState{MessageID: "<" + m.Envelope.MessageID + ">", Flags: strings.Join(flags, " ")}
			}
		}
		state[mbox.Mailbox] = f
	}
	return state
}

// maildirLetters are the Maildir info letters for the IMAP system flags mbsync syncs.
var maildirLetters = map[imap.Flag]string{imap.FlagDraft: "D", imap.FlagFlagged: "F",
	imap.FlagAnswered: "R", imap.FlagSeen: "S", imap.FlagDeleted: "T"}

// mailView is folder -> Message-ID -> Maildir info letters, how both sides are compared.
func mailView(state map[string]folderState) map[string]map[string]string {
	view := map[string]map[string]string{}
	for name, f := range state {
		view[name] = map[string]string{}
		for _, m := range f.Messages {
			var letters []string
			for _, fl := range strings.Fields(m.Flags) {
				letters = append(letters, maildirLetters[imap.Flag(fl)]) // keywords map to ""
			}
			sort.Strings(letters)
			view[name][m.MessageID] = strings.Join(letters, "")
		}
	}
	return view
}

// maildirs is mbsync's local side: INBOX in its own Maildir, other folders under root.
type maildirs struct{ inbox, root string }

// view reads every Maildir folder: folder -> Message-ID -> info letters, and the file path
// of each Message-ID.
func (m maildirs) view(t *testing.T) (map[string]map[string]string, map[string]string) {
	t.Helper()
	view := map[string]map[string]string{}
	paths := map[string]string{}
	readFolder := func(name, dir string) {
		view[name] = map[string]string{}
		for _, sub := range []string{"cur", "new"} {
			entries, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				path := filepath.Join(dir, sub, e.Name())
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				msg, err := mail.ReadMessage(f)
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				id := msg.Header.Get("Message-Id")
				_, info, _ := strings.Cut(e.Name(), ":2,")
				view[name][id] = info
				paths[id] = path
			}
		}
	}
	readFolder("INBOX", m.inbox)
	err := filepath.WalkDir(m.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != m.root {
			if _, err := os.Stat(filepath.Join(path, "cur")); err == nil {
				rel, _ := filepath.Rel(m.root, path)
				readFolder(filepath.ToSlash(rel), path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return view, paths
}

// checkSynced asserts that the server and the Maildir both hold exactly want.
func checkSynced(t *testing.T, srv *e2eServer, user, pass string, local maildirs, want map[string]map[string]string, when string) {
	t.Helper()
	if server := mailView(imapState(t, srv.ports["imap"], user, pass)); !reflect.DeepEqual(server, want) {
		t.Fatalf("%s, the server has\n%v\nwant\n%v", when, server, want)
	}
	if got, _ := local.view(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s, the Maildir has\n%v\nwant\n%v", when, got, want)
	}
}

// renameInfo sets a Maildir message's flags the way a mail program does: it moves the file
// to cur/ with new info letters, keeping the unique part (and mbsync's ,U= in it).
func renameInfo(t *testing.T, path, letters string) {
	t.Helper()
	base, _, _ := strings.Cut(filepath.Base(path), ":2,")
	to := filepath.Join(filepath.Dir(filepath.Dir(path)), "cur", base+":2,"+letters)
	if err := os.Rename(path, to); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeMbsyncrc(t *testing.T, path, addr, user, pass string, local maildirs) {
	t.Helper()
	tmpl, err := template.ParseFiles("../../testdata/e2e/mbsyncrc.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, map[string]string{"Port": port(addr), "User": user, "Pass": pass,
		"Maildir": local.root, "Inbox": local.inbox})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(local.root, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.String())
}

// runMbsync runs every channel of the configuration once.
func runMbsync(t *testing.T, srv *e2eServer, config string) {
	t.Helper()
	cmd := exec.Command("mbsync", "--config", config, "--all", "--verbose")
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(config))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mbsync: %v\n%s\nserver log:\n%s", err, out, srv.log.String())
	}
}

// snapshotDir maps every file under dir to a hash of its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, path)
		snap[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}
