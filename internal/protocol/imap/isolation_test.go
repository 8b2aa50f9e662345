package imap

// Tenant isolation (docs/security.md, threat model "other tenants"): logged in as alice,
// every command that names a mailbox or a message is tried on bob's mailboxes. Each must
// answer exactly as for a name that exists nowhere, and bob's mail must be untouched.

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

const (
	bobUser     = "bob@example.com"
	bobPassword = "bob's password"
	bobToken    = "bobsecrettoken" // in every message of bob's, searched for by alice
)

// bobAccount creates bob with INBOX (more messages than alice has, so that UIDs exist there
// that alice's INBOX lacks), Secret and Secret/Deeper, with flags and subscriptions.
func bobAccount(t *testing.T, st *store.Store) store.Account {
	t.Helper()
	ctx := context.Background()
	bob, err := st.CreateAccount(ctx, store.NewAccount{Address: bobUser, Password: bobPassword})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Secret", "Secret/Deeper"} {
		if _, err := st.CreateMailbox(ctx, bob.ID, name, ""); err != nil {
			t.Fatal(err)
		}
		if err := st.SetSubscribed(ctx, bob.ID, name, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, mb := range []string{"INBOX", "INBOX", "INBOX", "INBOX", "INBOX", "Secret", "Secret", "Secret/Deeper"} {
		msg := plainMessage("for bob "+bobToken, "bob's "+mb+" "+bobToken)
		if _, err := st.Deliver(ctx, bob.ID, strings.NewReader(msg),
			store.DeliverOptions{Mailbox: mb, Flags: []string{store.FlagFlagged, "$BobOnly"}}); err != nil {
			t.Fatal(err)
		}
	}
	return bob
}

// snapshot describes everything of an account's mail that a command could change.
func snapshot(t *testing.T, st *store.Store, accountID int64) string {
	t.Helper()
	ctx := context.Background()
	mbs, err := st.Mailboxes(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := st.Subscriptions(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "subscriptions %q\n", subs)
	for _, mb := range mbs {
		// Not RecentUID: a SELECT of one's own mailbox takes \Recent, which changes no mail.
		fmt.Fprintf(&b, "%s %s validity=%d next=%d modseq=%d\n",
			mb.Name, mb.SpecialUse, mb.UIDValidity, mb.UIDNext, mb.ModSeq)
		msgs, err := st.Messages(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Fprintf(&b, "  uid=%d flags=%v size=%d modseq=%d body=%d\n", m.UID, m.Flags, m.Size, m.ModSeq, m.BodyID)
		}
	}
	return b.String()
}

// same runs format with bob's name and with a name that exists nowhere and requires the two
// answers, untagged responses included, to be identical once the names are swapped back.
func same(t *testing.T, c *rawClient, format, bobs, nowhere string) (untagged []string, status string) {
	t.Helper()
	bu, bs := c.cmd(format, bobs)
	nu, ns := c.cmd(format, nowhere)
	norm := func(u []string, s string) string {
		all := strings.ReplaceAll(strings.Join(append(u, s), "\n"), nowhere, bobs)
		return esearchTag.ReplaceAllString(all, `(TAG "*")`) // RFC 4731: the command's own tag
	}
	if got, want := norm(bu, bs), norm(nu, ns); got != want {
		t.Errorf("%s: bob's %q answered\n%s\nbut the never-existing %q\n%s", strings.Fields(format)[0], bobs, got, nowhere, want)
	}
	for _, l := range append(bu, bs) {
		if strings.Contains(l, bobToken) || strings.Contains(l, "$BobOnly") {
			t.Errorf("%s %q leaked bob's data: %q", strings.Fields(format)[0], bobs, l)
		}
	}
	return bu, bs
}

var esearchTag = regexp.MustCompile(`\(TAG "[^"]*"\)`)

// noneOfBobs fails if any line names bob's mailboxes, his address or his data.
func noneOfBobs(t *testing.T, what string, lines []string) {
	t.Helper()
	for _, l := range lines {
		for _, s := range []string{"Secret", "Deeper", "bob", bobToken, "$BobOnly"} {
			if strings.Contains(l, s) {
				t.Errorf("%s: %q mentions %q", what, l, s)
			}
		}
	}
}

func TestTenantIsolationIMAP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := bobAccount(t, e.st)
	e.deliver("INBOX", plainMessage("for alice", "alice's first"))
	e.deliver("INBOX", plainMessage("for alice", "alice's second"))
	if _, err := e.st.CreateMailbox(ctx, e.acct.ID, "Mine", ""); err != nil {
		t.Fatal(err)
	}
	bobBefore := snapshot(t, e.st, bob.ID)
	aliceBefore := snapshot(t, e.st, e.acct.ID)

	c := e.rawLogin()
	pairs := [][2]string{{"Secret", "Nonexistent"}, {"Secret/Deeper", "Nonexistent/Deeper"}}

	// Authenticated state: commands that name a mailbox.
	for _, p := range pairs {
		for _, format := range []string{
			`SELECT "%s"`,
			`EXAMINE "%s"`,
			`STATUS "%s" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE)`,
			`DELETE "%s"`,
			`RENAME "%s" "Stolen"`,
			`SUBSCRIBE "%s"`,
			`UNSUBSCRIBE "%s"`,
			`LIST "" "%s"`,
			`LIST "" "%s/*"`,
			`LIST "%s" "*"`,
			`LSUB "" "%s"`,
			`LIST (SUBSCRIBED) "" "%s" RETURN (STATUS (MESSAGES))`,
			"APPEND \"%s\" {25+}\r\nSubject: x\r\n\r\nfrom alice",
			// Extensions not offered (QUOTA, ACL, METADATA) must not tell either.
			`GETQUOTAROOT "%s"`, `MYRIGHTS "%s"`, `GETACL "%s"`, `GETMETADATA "%s" /private/comment`,
		} {
			same(t, c, format, p[0], p[1])
		}
	}
	// SUBSCRIBE may succeed for a name that does not exist (RFC 3501 6.3.6); it then
	// concerns alice's subscriptions only. Undo it so that alice's state compares below.
	c.cmd(`UNSUBSCRIBE "Secret"`)
	c.cmd(`UNSUBSCRIBE "Secret/Deeper"`)
	c.cmd(`UNSUBSCRIBE "Nonexistent"`)
	c.cmd(`UNSUBSCRIBE "Nonexistent/Deeper"`)

	// LIST and LSUB patterns that could reach outside alice's hierarchy.
	for _, pat := range []string{`"" "*"`, `"" "%"`, `"" "%/%"`, `"" "Secret*"`, `"" "*Secret*"`,
		`"" "*Deeper"`, `"" "../*"`, `"../" "*"`, `"" "~bob/*"`, `"~bob" "*"`, `"" "~bob@example.com/*"`,
		`"" "#shared/*"`, `"#shared" "*"`, `"" "#users/*"`, `"" "Other Users/*"`, `"" "/"`,
		`"" "/*"`, `"/" "*"`, `"" "bob@example.com/*"`, `"" "bob@example.com*"`, `"" "*bob*"`,
		`"" "INBOX/../Secret"`, `"" "..*"`, `"" "\\Secret"`} {
		for _, verb := range []string{"LIST", "LSUB"} {
			u, status := c.cmd(verb + " " + pat)
			noneOfBobs(t, verb+" "+pat, append(u, status))
		}
		u, status := c.cmd(`LIST (SUBSCRIBED RECURSIVEMATCH) ` + pat + ` RETURN (CHILDREN STATUS (MESSAGES UNSEEN))`)
		noneOfBobs(t, "LIST-EXTENDED "+pat, append(u, status))
	}
	// LIST "" "*" is exactly alice's mailboxes.
	u := c.ok(`LIST "" "*"`)
	mbs, err := e.st.Mailboxes(ctx, e.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != len(mbs) {
		t.Errorf(`LIST "" "*" gave %d mailboxes, alice has %d: %q`, len(u), len(mbs), u)
	}

	// NAMESPACE: a personal namespace only, no other users' or shared one (RFC 2342).
	if u := c.ok("NAMESPACE"); len(u) != 1 || u[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("NAMESPACE = %q", u)
	}

	// Selected state: alice's INBOX has UIDs 1 and 2, bob's has 1 to 5. Its FLAGS and
	// PERMANENTFLAGS must not show keywords only bob uses.
	noneOfBobs(t, "SELECT INBOX", c.ok(`SELECT INBOX`))
	for _, p := range pairs {
		for _, format := range []string{
			`COPY 1 "%s"`, `UID COPY 1 "%s"`, `MOVE 1 "%s"`, `UID MOVE 1 "%s"`,
			`COPY 1:* "%s"`, `UID MOVE 1:* "%s"`,
			`STATUS "%s" (MESSAGES)`, `APPEND "%s" (\Seen) {5+}` + "\r\nhello",
		} {
			same(t, c, format, p[0], p[1])
		}
	}
	// Messages that exist only in bob's INBOX (UIDs 3 to 5) answer as UIDs that exist
	// nowhere (100 to 200).
	for _, format := range []string{
		`UID FETCH %s (FLAGS UID RFC822.SIZE BODY.PEEK[])`,
		`UID STORE %s +FLAGS (\Deleted $Alice)`,
		`UID STORE %s FLAGS.SILENT ()`,
		`UID SEARCH UID %s`,
		`UID SEARCH UID %s TEXT bob`,
		`UID COPY %s Mine`,
		`UID MOVE %s Mine`,
		`UID EXPUNGE %s`,
		`FETCH %s (FLAGS)`,
		`STORE %s +FLAGS (\Seen)`,
		`COPY %s Mine`,
		`MOVE %s Mine`,
		`SEARCH %s`,
	} {
		same(t, c, format, "3:5", "100:200")
	}
	for _, format := range []string{
		`SEARCH TEXT "%s"`, `SEARCH BODY "%s"`, `SEARCH SUBJECT "%s"`, `UID SEARCH KEYWORD %s`,
		`SEARCH OR TEXT "%s" KEYWORD $BobOnly`, `SEARCH RETURN (ALL COUNT) TEXT "%s"`,
	} {
		u, status := same(t, c, format, bobToken, "nosuchtokenanywhere")
		if got := grep(u, `^\* (SEARCH|ESEARCH)`); len(got) != 1 || strings.ContainsAny(strings.TrimPrefix(got[0], "* SEARCH"), "0123456789") && !strings.Contains(got[0], "COUNT 0") {
			t.Errorf("%s found something in alice's INBOX: %q %s", format, u, status)
		}
	}
	u = c.ok(`UID FETCH 1:* (UID FLAGS BODY.PEEK[])`)
	if n := len(grep(u, `^\* \d+ FETCH`)); n != 2 {
		t.Errorf("alice's INBOX shows %d messages, want her 2: %q", n, u)
	}
	noneOfBobs(t, "UID FETCH 1:*", u)
	c.ok(`UNSELECT`)

	if got := snapshot(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("bob's mail changed:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}
	if got := snapshot(t, e.st, e.acct.ID); got != aliceBefore {
		t.Errorf("alice's mail changed by commands that should all have failed:\nbefore\n%s\nafter\n%s", aliceBefore, got)
	}

	// Names bob uses are free in alice's account: creating, renaming to and filling them
	// concerns her mailboxes only.
	c.ok(`CREATE "Secret"`)
	c.ok(`CREATE "Secret/Deeper"`)
	c.ok(`CREATE "bob@example.com/Secret"`)
	c.ok(`RENAME "Mine" "Secret/Mine"`)
	c.ok("APPEND \"Secret\" {25+}\r\nSubject: x\r\n\r\nfrom alice")
	c.ok(`SELECT INBOX`)
	c.ok(`UID COPY 1 "Secret/Deeper"`)
	c.ok(`UID MOVE 2 "Secret"`)
	c.ok(`SUBSCRIBE "Secret"`)
	u = c.ok(`SELECT "Secret"`)
	if got := grep(u, `^\* \d+ EXISTS`); len(got) != 1 || got[0] != "* 2 EXISTS" {
		t.Errorf("alice's own Secret: %q, want her 2 messages", u)
	}
	u = c.ok(`UID FETCH 1:* (FLAGS BODY.PEEK[])`)
	noneOfBobs(t, "FETCH in alice's Secret", grep(u, "BobOnly|"+bobToken))
	u = c.ok(`STATUS "Secret/Deeper" (MESSAGES)`)
	if len(u) != 1 || !strings.Contains(u[0], "MESSAGES 1") {
		t.Errorf("alice's Secret/Deeper: %q", u)
	}
	c.ok(`UNSELECT`)
	c.ok(`RENAME "Secret" "Renamed"`)
	c.ok(`DELETE "Renamed/Deeper"`) // RENAME took the inferior names along (RFC 3501 6.3.5)
	c.ok(`DELETE "bob@example.com/Secret"`)
	if got := snapshot(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("alice's own Secret reached bob's:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}

	// Bob's own view is still whole: his session sees all his messages.
	bc := e.raw()
	bc.ok(`LOGIN %q %q`, bobUser, bobPassword)
	if u := bc.ok(`STATUS "Secret" (MESSAGES)`); len(u) != 1 || !strings.Contains(u[0], "MESSAGES 2") {
		t.Errorf("bob's Secret: %q", u)
	}
}

// TestLoginCannotImpersonate: alice's password does not open bob's account, by LOGIN or by
// SASL PLAIN with bob as authorization identity, and the refusal is the one an unknown
// account gets.
func TestLoginCannotImpersonate(t *testing.T) {
	e := newEnv(t)
	bobAccount(t, e.st)
	c := e.raw()
	_, bobStatus := c.cmd(`LOGIN %q %q`, bobUser, testPassword)
	_, nobodyStatus := c.cmd(`LOGIN %q %q`, "nobody@example.com", testPassword)
	if !strings.HasPrefix(bobStatus, "NO") || bobStatus != nobodyStatus {
		t.Errorf("LOGIN bob with alice's password: %q; an unknown account: %q", bobStatus, nobodyStatus)
	}
	for _, authz := range []string{bobUser, "nobody@example.com"} {
		_, status := c.cmd(`AUTHENTICATE PLAIN %s`, base64.StdEncoding.EncodeToString([]byte(authz+"\x00"+testUser+"\x00"+testPassword)))
		if strings.HasPrefix(status, "OK") {
			// Logged in: it must be as alice, never as bob.
			if u := c.ok(`STATUS "Secret" (MESSAGES)`); len(u) != 0 {
				t.Errorf("AUTHENTICATE PLAIN as %s for alice opened bob's mailboxes: %q", authz, u)
			}
			t.Errorf("AUTHENTICATE PLAIN with authorization identity %s accepted for alice: %s", authz, status)
			return
		}
	}
}

// TestTenantIsolationIMAPQualifiedNames: names that try to reach bob's mailboxes through a
// namespace, a path or his address (~bob/, #shared/, #users/, Other Users/, ../, a leading
// /, bob@example.com/, a different case) answer, in every command that names a mailbox,
// exactly as the same form of a name that exists nowhere; bob's mail is unchanged, and a
// rename of alice's mailbox onto bob's names concerns her account only.
func TestTenantIsolationIMAPQualifiedNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := bobAccount(t, e.st)
	e.deliver("INBOX", plainMessage("for alice", "alice's first"))
	if _, err := e.st.CreateMailbox(ctx, e.acct.ID, "Mine", ""); err != nil {
		t.Fatal(err)
	}
	bobBefore := snapshot(t, e.st, bob.ID)
	aliceBefore := snapshot(t, e.st, e.acct.ID)
	c := e.rawLogin()

	// Each pair: a way to name one of bob's mailboxes, and the same form naming nothing.
	var pairs [][2]string
	for _, form := range []string{
		"~%s/%s", "~%s@example.com/%s", "%s@example.com/%s", "#shared/%s/%s", "#users/%s/%s",
		"Other Users/%s/%s", "Shared Folders/%s/%s", "../%s@example.com/%s", "../%s/%s",
		"/%s/../%s", "%s/../../%s",
	} {
		for _, mb := range [][2]string{{"Secret", "Nowhere"}, {"INBOX", "INBOX"}, {"Secret/Deeper", "Nowhere/Deeper"}} {
			pairs = append(pairs, [2]string{fmt.Sprintf(form, "bob", mb[0]), fmt.Sprintf(form, "zed", mb[1])})
		}
	}
	pairs = append(pairs, [][2]string{
		{"/Secret", "/Nowhere"}, {"SECRET", "NOWHERE"}, {"secret/deeper", "nowhere/deeper"},
		{"INBOX/../Secret", "INBOX/../Nowhere"}, {"./Secret", "./Nowhere"}, {"Secret/", "Nowhere/"},
		{"~b&APY-b/Secret", "~z&APY-d/Nowhere"}, // modified UTF-7 (RFC 3501 5.1.3): ~böb/Secret
	}...)

	for _, p := range pairs {
		for _, format := range []string{
			`SELECT "%s"`,
			`EXAMINE "%s"`,
			`STATUS "%s" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)`,
			`DELETE "%s"`,
			`RENAME "%s" "Stolen"`,
			`LIST "" "%s"`,
			`LIST "" "%s*"`,
			`LSUB "" "%s*"`,
			"APPEND \"%s\" {25+}\r\nSubject: x\r\n\r\nfrom alice",
		} {
			same(t, c, format, p[0], p[1])
		}
	}
	c.ok(`SELECT INBOX`)
	for _, p := range pairs {
		for _, format := range []string{`COPY 1 "%s"`, `UID COPY 1 "%s"`, `MOVE 1 "%s"`, `UID MOVE 1 "%s"`} {
			same(t, c, format, p[0], p[1])
		}
	}
	c.ok(`UNSELECT`)
	if got := snapshot(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("bob's mail changed:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}
	// Some of these names are valid names for alice's own mailboxes (APPEND or CREATE may
	// make them); what must hold is that none of them reached bob's. Compare her mail
	// only where every command failed: nothing of hers changed either.
	if got := snapshot(t, e.st, e.acct.ID); got != aliceBefore {
		t.Errorf("alice's mail changed by commands that should all have failed:\nbefore\n%s\nafter\n%s", aliceBefore, got)
	}

	// RENAME alice's mailbox onto bob's names, and back: both succeed, in her account only.
	for _, target := range []string{"Secret", "Secret/Deeper"} {
		c.ok(`RENAME "Mine" "%s"`, target)
		if u := c.ok(`LIST "" "%s"`, target); len(u) != 1 {
			t.Errorf("after RENAME Mine %s: LIST shows %q", target, u)
		}
		c.ok(`RENAME "%s" "Mine"`, target)
	}
	c.cmd(`DELETE "Secret"`) // the parent RENAME to Secret/Deeper may have made
	if got := snapshot(t, e.st, bob.ID); got != bobBefore {
		t.Errorf("a RENAME onto bob's names changed his mail:\nbefore\n%s\nafter\n%s", bobBefore, got)
	}
}

// TestTenantIsolationIMAPUpdates: mail arriving in, and changes to, bob's INBOX are never
// announced to alice's session on her INBOX (NOOP, IDLE), whose updates are keyed by
// mailbox and not by name.
func TestTenantIsolationIMAPUpdates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := bobAccount(t, e.st)
	e.deliver("INBOX", plainMessage("for alice", "alice's first"))
	c := e.rawLogin()
	c.ok(`SELECT INBOX`)

	bobMsg := plainMessage("for bob "+bobToken, "bob's new "+bobToken)
	if _, err := e.st.Deliver(ctx, bob.ID, strings.NewReader(bobMsg), store.DeliverOptions{Mailbox: "INBOX"}); err != nil {
		t.Fatal(err)
	}
	bc := e.raw()
	bc.ok(`LOGIN %q %q`, bobUser, bobPassword)
	bc.ok(`SELECT INBOX`)
	bc.ok(`STORE 1:* +FLAGS (\Seen $BobOnly)`)
	bc.ok(`STORE 1 +FLAGS (\Deleted)`)
	bc.ok(`EXPUNGE`)
	if u := c.ok(`NOOP`); len(u) != 0 {
		t.Errorf("alice's NOOP after changes in bob's INBOX: %q", u)
	}

	// IDLE: bob's next delivery and then one of alice's; the first update alice gets must
	// be her own second message.
	c.send("I IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	if _, err := e.st.Deliver(ctx, bob.ID, strings.NewReader(bobMsg), store.DeliverOptions{Mailbox: "INBOX"}); err != nil {
		t.Fatal(err)
	}
	e.deliver("INBOX", plainMessage("for alice", "alice's second"))
	if l := c.line(); l != "* 2 EXISTS" {
		t.Errorf("alice's first update during IDLE: %q, want * 2 EXISTS (her second message)", l)
	}
	c.send("DONE")
	for {
		l := c.line()
		noneOfBobs(t, "IDLE", []string{l})
		if strings.HasPrefix(l, "I ") {
			break
		}
	}
	u := c.ok(`UID FETCH 1:* (FLAGS BODY.PEEK[])`)
	noneOfBobs(t, "FETCH after IDLE", u)
	if n := len(grep(u, `^\* \d+ FETCH`)); n != 2 {
		t.Errorf("alice's INBOX shows %d messages, want her 2: %q", n, u)
	}
}
