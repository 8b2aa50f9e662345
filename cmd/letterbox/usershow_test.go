package main

import (
	"context"
	"regexp"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/store"
)

func TestUserShowAndMod(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	expectCode(t, lb(t, nil, "pw\n", "user", "add", "ann@example.com", "--password-stdin", "--quota", "1M", "--quota-messages", "10", "--protocols", "pop3", d), 0, "user add --protocols")
	expectCode(t, lb(t, nil, "", "user", "add", "y@example.com", "--password", "pw", "--quota-messages", "many", d), exitUsage, "user add --quota-messages many")
	expectCode(t, lb(t, nil, "pw\n", "user", "add", "off@example.com", "--password-stdin", "--disable", d), 0, "user add --disable")
	expectCode(t, lb(t, nil, "", "user", "add", "x@example.com", "--password", "pw", "--protocols", "smtp", d), exitUsage, "user add --protocols smtp")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "ann@example.com", d), 0, "deliver")
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "ann@example.com", "--mailbox", "Archives", d), 0, "deliver to Archives")

	show := lb(t, nil, "", "user", "show", "ann@example.com", d)
	expectCode(t, show, 0, "user show")
	for _, re := range []string{
		`(?m)^address: +ann@example\.com$`,
		`(?m)^created: +\d{4}-\d\d-\d\dT`,
		`(?m)^disabled: +no$`,
		`(?m)^protocols: +pop3$`,
		`(?m)^quota: +1M$`,
		`(?m)^used: +\S+ \(0% of quota\)$`,
		`(?m)^quota messages: +10$`,
		`(?m)^messages: +2 \(20% of quota\)$`,
		`(?m)^  INBOX +1 +1 +\S+$`,
		`(?m)^  Archives +1 +1 +\S+$`,
		`(?m)^  Sent +0 +0 +0`,
	} {
		if !regexp.MustCompile(re).MatchString(show.stdout) {
			t.Errorf("user show does not match %s:\n%s", re, show.stdout)
		}
	}
	if r := lb(t, nil, "", "user", "show", "off@example.com", d); !regexp.MustCompile(`(?m)^disabled: +yes$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^protocols: +all`).MatchString(r.stdout) {
		t.Errorf("user show of a disabled account:\n%s", r.stdout)
	}
	expectCode(t, lb(t, nil, "", "user", "show", "nobody@example.com", d), exitNoUser, "user show of an unknown user")

	expectCode(t, lb(t, nil, "", "user", "mod", "ann@example.com", "--protocols", "imap,pop3", "--quota", "none", "--quota-messages", "none", "--disable", d), 0, "user mod")
	expectCode(t, lb(t, nil, "", "user", "mod", "ann@example.com", d), exitUsage, "user mod without changes")
	expectCode(t, lb(t, nil, "", "user", "mod", "ann@example.com", "--disable", "--enable", d), exitUsage, "user mod --disable --enable")
	expectCode(t, lb(t, nil, "", "user", "mod", "nobody@example.com", "--enable", d), exitNoUser, "user mod of an unknown user")

	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.LookupAccount(context.Background(), "ann@example.com")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !a.Disabled || a.QuotaBytes != 0 || a.QuotaMessages != 0 || !a.Allows(store.ProtocolIMAP) || !a.Allows(store.ProtocolPOP3) {
		t.Errorf("after user mod: %+v", a)
	}
	expectCode(t, lb(t, nil, "", "user", "mod", "ann@example.com", "--enable", "--protocols", "imap", "--quota-messages", "2", d), 0, "user mod --enable")
	if r := lb(t, nil, "", "user", "show", "ann@example.com", d); !regexp.MustCompile(`(?m)^disabled: +no$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^protocols: +imap$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^quota messages: +2$`).MatchString(r.stdout) {
		t.Errorf("after --enable --protocols imap --quota-messages 2:\n%s", r.stdout)
	}
	// At its quota in messages (2 of 2), deliver refuses with exit 75.
	expectCode(t, lb(t, nil, testMessage, "deliver", "--to", "ann@example.com", d), exitTempFail, "deliver over the message quota")
}
