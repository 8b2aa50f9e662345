package pop3

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func scrapeMetrics(r *metrics.Recorder) string {
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// A plan's protocols apply at the next login, answered -ERR [AUTH] (RFC 3206 §4: the
// credentials are not acceptable here), and are counted apart from bad passwords.
func TestProtocolsChangeAndMetrics(t *testing.T) {
	rec := metrics.New()
	e := newEnv(t, withOptions(func(o *Options) { o.Metrics = rec }))
	ctx := context.Background()
	if err := e.st.SetProtocols(ctx, testUser, []string{store.ProtocolIMAP}); err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.ok("USER " + testUser)
	if got := c.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("IMAP-only plan: %q, want -ERR [AUTH]", got)
	}
	if err := e.st.SetProtocols(ctx, testUser, nil); err != nil {
		t.Fatal(err)
	}
	c.ok("USER " + testUser)
	c.ok("PASS " + testPassword)

	if err := e.st.SetAccountDisabled(ctx, testUser, true); err != nil {
		t.Fatal(err)
	}
	d := e.dial()
	d.ok("USER " + testUser)
	if got := d.err("PASS " + testPassword); !strings.HasPrefix(got, "-ERR [AUTH] ") {
		t.Errorf("disabled account: %q, want -ERR [AUTH]", got)
	}
	d.err("XYZZY")

	out := scrapeMetrics(rec)
	for _, want := range []string{
		`letterbox_login_failures_total{protocol="pop3",reason="protocol_not_allowed"} 1`,
		`letterbox_login_failures_total{protocol="pop3",reason="disabled"} 1`,
		`letterbox_commands_total{command="pass",protocol="pop3"} 3`,
		`letterbox_commands_total{command="user",protocol="pop3"} 3`,
		`letterbox_commands_total{command="unknown",protocol="pop3"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, `reason="credentials"`) {
		t.Error("a refused plan counted as a bad password")
	}
}
