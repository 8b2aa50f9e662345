package metrics

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// A nil Recorder records nothing and never panics: protocols call it unchecked.
func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.ConnOpened(POP3)
	r.ConnClosed(POP3)
	r.Command(POP3, "USER")
	r.LoginFailed(IMAP, auth.ReasonCredentials)
	r.Delivery(ViaLMTP, store.OutcomeDelivered)
	r.QuotaRejected(ViaCopy)
	r.BytesSent(POP3, 10)
	r.StoreOp("deliver", time.Millisecond)
	r.IMAPClientLoggedIn("thunderbird")
	r.IMAPClientLoggedOut("thunderbird")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if r.Listener(l, POP3) != l {
		t.Error("a nil Recorder wraps listeners")
	}
}

func scrape(t *testing.T, r *Recorder) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestListenerCountsConnectionsAndBytes(t *testing.T) {
	r := New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := r.Listener(raw, POP3)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("+OK hello\r\n"))
			c.Close()
			c.Close() // a second Close must not count twice
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(c); string(b) != "+OK hello\r\n" {
			t.Fatalf("read %q", b)
		}
		c.Close()
	}
	out := scrape(t, r)
	for _, want := range []string{
		`letterbox_connections_total{protocol="pop3"} 3`,
		`letterbox_connections{protocol="pop3"} 0`,
		fmt.Sprintf(`letterbox_bytes_sent_total{protocol="pop3"} %d`, 3*len("+OK hello\r\n")),
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s in\n%s", want, grepLetterbox(out))
		}
	}
}

func TestCountersAndLabels(t *testing.T) {
	r := New()
	r.Command(POP3, "RETR")
	r.Command(POP3, strings.Repeat("X", 100))
	r.Delivery(ViaLMTP, store.OutcomeOverQuota)
	r.Delivery(ViaAppend, store.OutcomeDelivered)
	r.StoreOp("deliver", 3*time.Millisecond)
	out := scrape(t, r)
	for _, want := range []string{
		`letterbox_commands_total{command="retr",protocol="pop3"} 1`,
		`letterbox_commands_total{command="` + strings.Repeat("x", maxLabel) + `",protocol="pop3"} 1`,
		`letterbox_deliveries_total{outcome="over_quota",via="lmtp"} 1`,
		`letterbox_quota_rejections_total{via="lmtp"} 1`,
		`letterbox_deliveries_total{outcome="delivered",via="append"} 1`,
		`letterbox_store_operation_seconds_bucket{op="deliver",le="0.005"} 1`,
		`letterbox_store_operation_seconds_bucket{op="deliver",le="0.0025"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s in\n%s", want, grepLetterbox(out))
		}
	}
	if strings.Contains(out, `quota_rejections_total{via="append"}`) {
		t.Error("a delivered APPEND counted as a quota rejection")
	}
}

// TestOverQuotaIsStoresOutcome checks that Delivery counts as quota rejections the outcome
// store.DeliveryOutcome gives an over-quota error.
func TestOverQuotaIsStoresOutcome(t *testing.T) {
	if got := store.DeliveryOutcome(fmt.Errorf("deliver: %w", store.ErrOverQuota)); got != overQuota {
		t.Errorf("store.DeliveryOutcome(ErrOverQuota) = %q, Delivery counts %q as a quota rejection", got, overQuota)
	}
}

func grepLetterbox(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "letterbox_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Transferred reads one connection's own byte counts, also from beneath a *tls.Conn, and
// reports ok=false for a connection that no Listener counted.
func TestTransferred(t *testing.T) {
	r := New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := r.Listener(raw, IMAP)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		buf := make([]byte, 3)
		io.ReadFull(c, buf)
		c.Write([]byte("hello"))
		accepted <- c
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.Write([]byte("abc"))
	if _, err := io.ReadFull(client, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()
	for _, c := range []net.Conn{server, tls.Server(server, &tls.Config{})} {
		if in, out, ok := Transferred(c); !ok || in != 3 || out != 5 {
			t.Errorf("Transferred(%T) = %d, %d, %v; want 3, 5, true", c, in, out, ok)
		}
	}
	if _, _, ok := Transferred(client); ok {
		t.Error("Transferred found counts on a connection no Listener accepted")
	}
}
