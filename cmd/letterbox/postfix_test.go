package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"text/template"
)

// TestPostfix puts Debian's Postfix in front of `letterbox serve`, as a provider would:
// mail sent to Postfix over SMTP is handed to Letterbox's LMTP listener and read back
// with POP3 and IMAP, and a recipient Letterbox refuses at RCPT (550 5.1.1) is bounced by
// Postfix to the sender (testdata/e2e/postfix_mail.py). Postfix runs as its own instance:
// a configuration directory, queue and log in a temporary directory (testdata/e2e/postfix)
// and an SMTP port of its own, so it neither needs nor touches a system Postfix. It must
// run as root (Postfix's master does), as CI does.
func TestPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	postfix := lookPostfix(t)
	needCommand(t, "python3")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("Postfix needs root to start its master process; CI runs as root")
		}
		t.Skip("Postfix needs root to start its master process")
	}

	srv := startE2E(t, t.TempDir())
	srv.addUser("alice@example.test", "alice-pw")
	srv.addUser("bob@example.test", "bob-pw")

	// Not t.TempDir: Postfix's daemons run as the postfix user and must be able to reach
	// the queue, and t.TempDir's parent is private to root.
	dir, err := os.MkdirTemp("", "letterbox-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "queue")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	settings := map[string]string{"Dir": dir, "LMTPPort": port(srv.ports["lmtp"]), "SMTPPort": port(freePort(t))}
	for _, name := range []string{"main.cf", "master.cf"} {
		tmpl, err := template.ParseFiles("../../testdata/e2e/postfix/" + name + ".tmpl")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(etc, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := tmpl.Execute(f, settings); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	maillog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		return string(b)
	}

	if out, err := exec.Command(postfix, "-c", etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, maillog())
	}
	t.Cleanup(func() {
		if out, err := exec.Command(postfix, "-c", etc, "stop").CombinedOutput(); err != nil {
			t.Logf("postfix stop: %v\n%s", err, out)
			exec.Command(postfix, "-c", etc, "abort").Run()
		}
	})
	if !waitListening("127.0.0.1:" + settings["SMTPPort"]) {
		t.Fatalf("Postfix does not listen on port %s\n%s", settings["SMTPPort"], maillog())
	}

	script, _ := filepath.Abs("../../testdata/e2e/postfix_mail.py")
	out, err := exec.Command("python3", script, settings["SMTPPort"], port(srv.ports["pop3"]), port(srv.ports["imap"])).CombinedOutput()
	if err != nil {
		t.Fatalf("postfix_mail.py: %v\n%s\nPostfix log:\n%s\nLetterbox log:\n%s", err, out, maillog(), srv.log.String())
	}
}

// lookPostfix finds Debian's postfix command, which lives in /usr/sbin (not always on a
// test's PATH).
func lookPostfix(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("postfix"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/postfix"); err == nil {
		return "/usr/sbin/postfix"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("postfix is not installed (.ci/run must install it)")
	}
	t.Skip("postfix is not installed")
	return ""
}
