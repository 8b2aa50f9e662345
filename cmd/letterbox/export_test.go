package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// exportedMessage is what a client sees of a message and must survive an export.
type exportedMessage struct {
	UID   uint32
	UIDL  string
	Flags string
	Date  int64
	Body  string
}

type exportedFolder struct {
	UIDValidity, UIDNext uint32
	Messages             []exportedMessage
}

// accountView reads every folder of an account, from a store that may be in use.
func accountView(t *testing.T, data, address string) map[string]exportedFolder {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t, data)
	defer st.Close()
	acct, err := st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mbs, err := st.Mailboxes(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	view := map[string]exportedFolder{}
	for _, mb := range mbs {
		f := exportedFolder{UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext}
		msgs, err := st.Messages(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			b, err := st.OpenMessage(ctx, mb.ID, m.UID)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(b)
			b.Close()
			uidl, _ := maildrop.FormatUIDL("", m.UID, mb.UIDValidity)
			f.Messages = append(f.Messages, exportedMessage{UID: m.UID, UIDL: uidl, Flags: strings.Join(m.Flags, " "),
				Date: m.InternalDate.Unix(), Body: string(raw)})
		}
		view[mb.Name] = f
	}
	return view
}

// fillAccount gives an account folders (one nested, one not ASCII, one with a dot),
// flags, keywords, dates, and a UID gap, with messages that mbox must quote.
func fillAccount(t *testing.T, data, address string) {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t, data)
	defer st.Close()
	acct, err := st.LookupAccount(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Work", "Work/Clients", "Entwürfe", "v1.2 notes"} {
		if _, err := st.CreateMailbox(ctx, acct.ID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(n int, body string) string {
		return fmt.Sprintf("From: alice@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n\r\n%s\r\n", n, n, body)
	}
	deliveries := []struct {
		mailbox string
		body    string
		flags   []string
	}{
		{"INBOX", "plain", []string{store.FlagSeen, "$Label1"}},
		{"INBOX", "From the start of a line\r\n>From quoted once\r\nFrom", []string{store.FlagAnswered, store.FlagFlagged}},
		{"INBOX", "to be expunged", nil},
		{"INBOX", "draft", []string{store.FlagDraft, store.FlagDeleted, "Project", "$Label1"}},
		{"Work/Clients", "client", []string{"ClientX"}},
		{"Entwürfe", "entwurf", []string{store.FlagDraft}},
		{"v1.2 notes", "notes", nil},
	}
	for i, d := range deliveries {
		_, err := st.Deliver(ctx, acct.ID, strings.NewReader(msg(i, d.body)), store.DeliverOptions{
			Mailbox: d.mailbox, Flags: d.flags, InternalDate: time.Date(2024, 1, 15+i, 9, 30, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
	}
	in, err := st.MailboxByName(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Expunge(ctx, in.ID, []uint32{3}); err != nil {
		t.Fatal(err)
	}
}

// TestExportImportRoundTrip: export to a Maildir, import into a fresh store: the same
// folders, UIDVALIDITY, UIDNEXT, UIDs (and so POP3 UIDLs), flags, keywords, dates, bytes.
// Through mbox: the same folders, flags, keywords, dates and bytes (new UIDs).
func TestExportImportRoundTrip(t *testing.T) {
	const user = "carol@example.com"
	data := t.TempDir()
	expectCode(t, lb(t, nil, "", "user", "add", user, "--password", "pw", "--data", data), 0, "user add")
	fillAccount(t, data, user)
	want := accountView(t, data, user)

	out := filepath.Join(t.TempDir(), "Maildir")
	r := lb(t, nil, "", "export", "--user", user, out, "--data", data)
	expectCode(t, r, 0, "export maildir")
	for _, p := range []string{"cur", "dovecot-uidlist", ".Work.Clients/dovecot-keywords", ".Entw&APw-rfe/maildirfolder", ".v1&AC4-2 notes/cur"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("export: %v", err)
		}
	}
	expectCode(t, lb(t, nil, "", "export", "--user", user, out, "--data", data), exitCantCrt, "export into a non-empty directory")

	fresh := t.TempDir()
	expectCode(t, lb(t, nil, "", "user", "add", user, "--password", "pw", "--data", fresh), 0, "user add (fresh store)")
	expectCode(t, lb(t, nil, "", "import", "--user", user, out, "--data", fresh), 0, "import of the export")
	if got := accountView(t, fresh, user); !reflect.DeepEqual(got, want) {
		t.Errorf("after export and import:\n%+v\nwant\n%+v", got, want)
	}

	// mbox: one file per folder.
	mboxDir := filepath.Join(t.TempDir(), "mbox")
	expectCode(t, lb(t, nil, "", "export", "--user", user, "--format", "mbox", mboxDir, "--data", data), 0, "export mbox")
	viaMbox := t.TempDir()
	expectCode(t, lb(t, nil, "", "user", "add", user, "--password", "pw", "--data", viaMbox), 0, "user add (mbox store)")
	expectCode(t, lb(t, nil, "", "import", "--user", user, mboxDir, "--data", viaMbox), 0, "import of the mbox export")
	got := accountView(t, viaMbox, user)
	for name, f := range want {
		var a, b []exportedMessage
		for _, m := range f.Messages {
			a = append(a, exportedMessage{Flags: m.Flags, Date: m.Date, Body: m.Body})
		}
		for _, m := range got[name].Messages {
			b = append(b, exportedMessage{Flags: m.Flags, Date: m.Date, Body: m.Body})
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s through mbox:\n%+v\nwant\n%+v", name, b, a)
		}
	}
}

// TestExportWhileServing exports while `serve` takes LMTP deliveries: the export is one
// snapshot, so each folder's dovecot-uidlist names exactly the files written, and what
// was exported is exactly the store's messages up to the exported UIDNEXT.
func TestExportWhileServing(t *testing.T) {
	const user = "dan@example.com"
	data := t.TempDir()
	srv := startE2E(t, data)
	srv.addUser(user, "pw")
	for i := 0; i < 20; i++ {
		if err := lmtpDeliver(srv.ports["lmtp"], user, fmt.Sprintf("<pre%d@example.org>", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := deliverMeanwhile(t, srv.ports["lmtp"], user)
	out := filepath.Join(t.TempDir(), "Maildir")
	exported, code := srv.cli("", "export", "--user", user, out)
	stop()
	if code != 0 {
		t.Fatalf("export while serving: exit %d: %s", code, exported)
	}

	fresh := t.TempDir()
	expectCode(t, lb(t, nil, "", "user", "add", user, "--password", "pw", "--data", fresh), 0, "user add")
	expectCode(t, lb(t, nil, "", "import", "--user", user, out, "--data", fresh), 0, "import")
	got := accountView(t, fresh, user)["INBOX"]
	all := accountView(t, data, user)["INBOX"]
	var want []exportedMessage
	for _, m := range all.Messages {
		if m.UID < got.UIDNext {
			want = append(want, m)
		}
	}
	if len(got.Messages) < 20 || !reflect.DeepEqual(got.Messages, want) {
		t.Errorf("exported %d messages up to UIDNEXT %d; the store has %d below it (%d in all)",
			len(got.Messages), got.UIDNext, len(want), len(all.Messages))
	}
}

// deliverMeanwhile delivers to user over LMTP, one message after another, until the
// returned stop is called (and returns once the last delivery ended).
func deliverMeanwhile(t *testing.T, lmtpAddr, user string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := lmtpDeliver(lmtpAddr, user, fmt.Sprintf("<meanwhile%d@example.org>", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
