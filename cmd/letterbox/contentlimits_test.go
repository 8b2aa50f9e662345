package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// limitHeader is a message whose header section (the fields, without the blank line) is n
// octets, LF line ends (as a local MDA gets them; the store counts CRLF, so each line counts
// one octet more than it is written).
func limitHeader(n int) string {
	var b strings.Builder
	for n > 0 {
		line := min(n, 80)
		if rest := n - line; rest > 0 && rest < 8 {
			line -= 8
		}
		b.WriteString("X: " + strings.Repeat("x", line-5) + "\n") // 5: "X: " and CRLF
		n -= line
	}
	return b.String() + "\nbody\n"
}

func limitNesting(depth int) string {
	var b strings.Builder
	b.WriteString("Subject: nested\n")
	for range depth {
		b.WriteString("Content-Type: message/rfc822\n\n")
	}
	return b.String() + "Subject: bottom\n\nbody\n"
}

// TestDeliverContentLimits: `letterbox deliver` refuses new mail over limits.header_size or
// deeper than limits.mime_depth with exit 65 (EX_DATAERR, permanent) and one line on
// stderr, storing nothing; `letterbox import` (mbox, Maildir with dovecot-uidlist) keeps
// the same messages as they were.
func TestDeliverContentLimits(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	env := []string{"LETTERBOX_LIMITS_HEADER_SIZE=1K"} // mime_depth: the default, 64
	expectCode(t, lb(t, env, "", "user", "add", "bob@example.com", "--password", "pw", d), 0, "user add")
	atLimit, overLimit := limitHeader(1024), limitHeader(1025)
	deep64, deep65 := limitNesting(64), limitNesting(65)

	for _, c := range []struct {
		name, msg, stderr string
		code              int
	}{
		{"header at the limit", atLimit, "", 0},
		{"header over the limit", overLimit, "limits.header_size (1K)", exitDataErr},
		{"64 levels", deep64, "", 0},
		{"65 levels", deep65, "limits.mime_depth (64 levels)", exitDataErr},
	} {
		r := lb(t, env, c.msg, "deliver", "--to", "bob@example.com", d)
		expectCode(t, r, c.code, "deliver: "+c.name)
		if c.code != 0 {
			if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], c.stderr) {
				t.Errorf("%s: stderr %q, want one line naming %s", c.name, r.stderr, c.stderr)
			}
		}
	}
	msgs, bodies := mailbox(t, data, "bob@example.com", "INBOX")
	if len(msgs) != 2 || string(bodies[0]) != crlf(atLimit) || string(bodies[1]) != crlf(deep64) {
		t.Fatalf("INBOX holds %d messages, want the two within the limits", len(msgs))
	}

	// Import keeps mail as it was: the refused messages come in whole.
	src := t.TempDir()
	mbox := filepath.Join(src, "old.mbox")
	from := "From alice@example.org Mon Jan 15 09:30:00 2024\n"
	if err := os.WriteFile(mbox, []byte(from+overLimit+"\n"+from+deep65+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := lb(t, env, "", "import", "--user", "bob@example.com", "--mailbox", "Old", mbox, d)
	expectCode(t, r, 0, "import mbox")
	if !strings.Contains(r.stdout, "imported 2 messages") {
		t.Errorf("import summary: %q", r.stdout)
	}
	if _, bodies := mailbox(t, data, "bob@example.com", "Old"); len(bodies) != 2 || string(bodies[0]) != crlf(overLimit) || string(bodies[1]) != crlf(deep65) {
		t.Errorf("imported from mbox: %d messages, not as they were", len(bodies))
	}

	md := filepath.Join(src, "Maildir")
	files := map[string]string{
		"dovecot-uidlist":                "3 V1705311000 N3\n1 :1705311000.M1P1.host\n2 :1705311001.M2P1.host\n",
		"cur/1705311000.M1P1.host:2,S":   overLimit,
		"cur/1705311001.M2P1.host:2,":    deep65,
		"new/.keep-the-directory-around": "",
	}
	for name, text := range files {
		p := filepath.Join(md, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(md, "new/.keep-the-directory-around"))
	os.MkdirAll(filepath.Join(md, "tmp"), 0o700)
	r = lb(t, env, "", "import", "--user", "bob@example.com", "--mailbox", "Dovecot", md, d)
	expectCode(t, r, 0, "import Dovecot Maildir")
	msgs, bodies = mailbox(t, data, "bob@example.com", "Dovecot")
	if len(msgs) != 2 || msgs[0].UID != 1 || msgs[1].UID != 2 || string(bodies[0]) != crlf(overLimit) || string(bodies[1]) != crlf(deep65) {
		t.Errorf("imported from a Dovecot Maildir: %d messages, not as they were\nstdout %s\nstderr %s", len(msgs), r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "skipped") {
		t.Errorf("import skipped messages: %s", r.stderr)
	}
}
