package imap

import (
	"context"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// counter returns the value of the series name{labels...} (label pairs) in r, 0 if absent.
func counter(t *testing.T, r *metrics.Recorder, name string, labels ...string) float64 {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func withMetrics(r *metrics.Recorder) envOption {
	return func(o *Options, _ *mailStore) { o.Metrics = r }
}

// RFC 5530 AUTHORIZATIONFAILED: the password is right, but this account may not use IMAP
// (a POP3-only plan) or is disabled. The change applies to the next login at once.
func TestAccountMayNotUseIMAP(t *testing.T) {
	rec := metrics.New()
	e := newEnv(t, withMetrics(rec))
	ctx := context.Background()
	if err := e.st.SetProtocols(ctx, testUser, []string{store.ProtocolPOP3}); err != nil {
		t.Fatal(err)
	}
	c := e.raw()
	if _, status := c.cmd("LOGIN %q %q", testUser, testPassword); !strings.HasPrefix(status, "NO [AUTHORIZATIONFAILED]") {
		t.Errorf("POP3-only account: %s, want NO [AUTHORIZATIONFAILED]", status)
	}
	if _, status := c.cmd("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2U="); !strings.HasPrefix(status, "NO [AUTHORIZATIONFAILED]") {
		t.Errorf("POP3-only account, AUTHENTICATE PLAIN: %s, want NO [AUTHORIZATIONFAILED]", status)
	}
	if got := counter(t, rec, "letterbox_login_failures_total", "protocol", "imap", "reason", auth.ReasonProtocol); got != 2 {
		t.Errorf("login failures (protocol not allowed) = %v, want 2", got)
	}

	if err := e.st.SetProtocols(ctx, testUser, []string{store.ProtocolIMAP, store.ProtocolPOP3}); err != nil {
		t.Fatal(err)
	}
	c.ok("LOGIN %q %q", testUser, testPassword)

	if err := e.st.SetAccountDisabled(ctx, testUser, true); err != nil {
		t.Fatal(err)
	}
	if _, status := e.raw().cmd("LOGIN %q %q", testUser, testPassword); !strings.HasPrefix(status, "NO [AUTHORIZATIONFAILED]") {
		t.Errorf("disabled account: %s, want NO [AUTHORIZATIONFAILED]", status)
	}
	if _, status := e.raw().cmd("LOGIN %q %q", testUser, "wrong"); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %s, want NO [AUTHENTICATIONFAILED]", status)
	}
	if got := counter(t, rec, "letterbox_login_failures_total", "reason", auth.ReasonCredentials); got != 1 {
		t.Errorf("login failures (credentials) = %v, want 1", got)
	}
}

// RFC 5530 OVERQUOTA on APPEND, and nothing is stored.
func TestAppendOverQuota(t *testing.T) {
	rec := metrics.New()
	e := newEnv(t, withMetrics(rec))
	msg := plainMessage("Too much", strings.Repeat("x", 2000)+"\r\n")
	if err := e.st.SetQuota(context.Background(), testUser, int64(len(msg))-1); err != nil {
		t.Fatal(err)
	}
	c := e.rawLogin()
	if _, status := c.cmd("APPEND INBOX {%d+}\r\n%s", len(msg), msg); !strings.HasPrefix(status, "NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %s, want NO [OVERQUOTA]", status)
	}
	if st, _ := e.st.Status(context.Background(), e.mailbox("INBOX").ID); st.Messages != 0 {
		t.Errorf("INBOX has %d messages after a refused APPEND", st.Messages)
	}
	if got := counter(t, rec, "letterbox_quota_rejections_total", "via", "append"); got != 1 {
		t.Errorf("quota rejections = %v, want 1", got)
	}
	if got := counter(t, rec, "letterbox_deliveries_total", "via", "append", "outcome", "over_quota"); got != 1 {
		t.Errorf("append deliveries over quota = %v, want 1", got)
	}

	// Within the quota it is stored.
	if err := e.st.SetQuota(context.Background(), testUser, int64(len(msg))); err != nil {
		t.Fatal(err)
	}
	if _, status := c.cmd("APPEND INBOX {%d+}\r\n%s", len(msg), msg); !strings.HasPrefix(status, "OK") {
		t.Fatalf("APPEND within quota: %s", status)
	}
	if got := counter(t, rec, "letterbox_deliveries_total", "via", "append", "outcome", "delivered"); got != 1 {
		t.Errorf("append deliveries = %v, want 1", got)
	}
}

// COPY adds to the account's usage and is refused over quota; MOVE does not add and is
// not refused even when the account is full.
func TestCopyOverQuotaMoveAllowed(t *testing.T) {
	rec := metrics.New()
	e := newEnv(t, withMetrics(rec))
	d := e.deliver("INBOX", plainMessage("One", "body\r\n"))
	if err := e.st.SetQuota(context.Background(), testUser, d.Size); err != nil { // exactly full
		t.Fatal(err)
	}
	c := e.rawLogin()
	c.ok("SELECT INBOX")
	if _, status := c.cmd("COPY 1 Archives"); !strings.HasPrefix(status, "NO [OVERQUOTA]") {
		t.Errorf("COPY over quota: %s, want NO [OVERQUOTA]", status)
	}
	if _, status := c.cmd("UID COPY 1 Archives"); !strings.HasPrefix(status, "NO [OVERQUOTA]") {
		t.Errorf("UID COPY over quota: %s, want NO [OVERQUOTA]", status)
	}
	if st, _ := e.st.Status(context.Background(), e.mailbox("Archives").ID); st.Messages != 0 {
		t.Errorf("Archives has %d messages after refused COPYs", st.Messages)
	}
	if got := counter(t, rec, "letterbox_quota_rejections_total", "via", "copy"); got != 2 {
		t.Errorf("copy quota rejections = %v, want 2", got)
	}
	if _, status := c.cmd("MOVE 1 Archives"); !strings.HasPrefix(status, "OK") {
		t.Errorf("MOVE with a full quota: %s, want OK", status)
	}
	if st, _ := e.st.Status(context.Background(), e.mailbox("Archives").ID); st.Messages != 1 {
		t.Errorf("Archives has %d messages after MOVE, want 1", st.Messages)
	}
}
