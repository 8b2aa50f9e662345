package server

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// hdialog speaks a line protocol (POP3, LMTP) for the tests.
type hdialog struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func hdial(t *testing.T, addr net.Addr) *hdialog {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &hdialog{t: t, c: c, br: bufio.NewReader(c)}
}

func (d *hdialog) line() string {
	d.t.Helper()
	l, err := d.br.ReadString('\n')
	if err != nil {
		d.t.Fatalf("read: %v (%q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect sends cmd (unless empty) and reads one line, which must start with prefix.
func (d *hdialog) expect(cmd, prefix string) string {
	d.t.Helper()
	if cmd != "" {
		fmt.Fprintf(d.c, "%s\r\n", cmd)
	}
	l := d.line()
	if !strings.HasPrefix(l, prefix) {
		d.t.Fatalf("%q: got %q, want %q...", cmd, l, prefix)
	}
	return l
}

// lmtpDeliver hands one message to rcpt over LMTP and returns the recipient's reply.
func lmtpDeliver(t *testing.T, addr net.Addr, rcpt, msg string) string {
	d := hdial(t, addr)
	d.expect("", "220")
	fmt.Fprintf(d.c, "LHLO client.test\r\n")
	for l := d.line(); !strings.HasPrefix(l, "250 "); l = d.line() {
		if !strings.HasPrefix(l, "250-") {
			t.Fatalf("LHLO: %q", l)
		}
	}
	d.expect("MAIL FROM:<sender@example.org>", "250")
	d.expect("RCPT TO:<"+rcpt+">", "250")
	d.expect("DATA", "354")
	reply := d.expect(msg+"\r\n.", "")
	d.expect("QUIT", "221")
	return reply
}

// scrape fetches /metrics and returns every sample line: `name{labels}` -> value.
func scrape(t *testing.T, srv *Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sample := regexp.MustCompile(`^([a-z_]+(?:\{[^}]*\})?) (\S+)$`)
	for _, l := range strings.Split(string(body), "\n") {
		if m := sample.FindStringSubmatch(l); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			out[m[1]] = v
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	cfg := testConfig(t)
	srv := start(t, cfg, io.Discard)
	ctx := context.Background()
	if _, err := srv.st.CreateAccount(ctx, store.NewAccount{Address: "ann@mail.test", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.st.CreateAccount(ctx, store.NewAccount{Address: "full@mail.test", Password: "x", QuotaBytes: 10}); err != nil {
		t.Fatal(err)
	}

	// A POP3 login failure, then a session that ends with QUIT.
	p := hdial(t, srv.Addr(POP3))
	p.expect("", "+OK")
	p.expect("USER ann@mail.test", "+OK")
	p.expect("PASS wrong", "-ERR [AUTH]")
	p.expect("NOOP", "-ERR")
	p.expect("QUIT", "+OK")
	if _, err := p.br.ReadByte(); err != io.EOF {
		t.Fatalf("after QUIT: %v, want EOF", err)
	}
	// The server shut its side after +OK and waits for the client's close before it lets go
	// of the connection (accept.CloseAfterGoodbye): the gauge counts it until then.
	p.c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if scrape(t, srv)[`letterbox_connections{protocol="pop3"}`] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the POP3 connection is still counted 10 s after the client closed it")
		}
	}

	// One LMTP delivery that is stored and one refused for quota.
	msg := "From: sender@example.org\r\nSubject: metrics\r\n\r\nHello.\r\n"
	if r := lmtpDeliver(t, srv.Addr(LMTP), "ann@mail.test", msg); !strings.HasPrefix(r, "250") {
		t.Fatalf("delivery: %q", r)
	}
	if r := lmtpDeliver(t, srv.Addr(LMTP), "full@mail.test", msg); !strings.HasPrefix(r, "552") {
		t.Fatalf("over-quota delivery: %q", r)
	}

	m := scrape(t, srv)
	want := map[string]float64{
		`letterbox_login_failures_total{protocol="pop3",reason="credentials"}`: 1,
		`letterbox_commands_total{command="user",protocol="pop3"}`:             1,
		`letterbox_commands_total{command="pass",protocol="pop3"}`:             1,
		`letterbox_commands_total{command="noop",protocol="pop3"}`:             1,
		`letterbox_connections_total{protocol="pop3"}`:                         1,
		`letterbox_connections{protocol="pop3"}`:                               0,
		`letterbox_connections_total{protocol="lmtp"}`:                         2,
		`letterbox_deliveries_total{outcome="delivered",via="lmtp"}`:           1,
		`letterbox_deliveries_total{outcome="over_quota",via="lmtp"}`:          1,
		`letterbox_quota_rejections_total{via="lmtp"}`:                         1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m[`letterbox_bytes_sent_total{protocol="pop3"}`] < float64(len("+OK\r\n")*3) {
		t.Errorf("bytes sent over POP3 = %v", m[`letterbox_bytes_sent_total{protocol="pop3"}`])
	}
	if m[`letterbox_store_operation_seconds_count{op="deliver"}`] < 2 || m[`letterbox_store_operation_seconds_count{op="create account"}`] != 2 {
		t.Errorf("store latency counts: deliver %v, create account %v",
			m[`letterbox_store_operation_seconds_count{op="deliver"}`], m[`letterbox_store_operation_seconds_count{op="create account"}`])
	}
	for k := range m {
		if strings.Contains(k, "@") {
			t.Errorf("a series names an address: %s", k)
		}
	}
}

func TestAutoconfigIsMounted(t *testing.T) {
	cfg := testConfig(t)
	cfg.Public.IMAP.Host, cfg.Public.IMAP.Port, cfg.Public.IMAP.TLS = "imap.mail.test", 993, "ssl"
	srv := start(t, cfg, io.Discard)
	resp, err := http.Get("http://" + srv.Addr(HTTP).String() + "/mail/config-v1.1.xml?emailaddress=ann%40mail.test")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cc struct {
		Provider struct {
			Incoming []struct {
				Type     string `xml:"type,attr"`
				Hostname string `xml:"hostname"`
				Port     int    `xml:"port"`
			} `xml:"incomingServer"`
		} `xml:"emailProvider"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&cc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	in := cc.Provider.Incoming
	if len(in) != 2 || in[0].Type != "imap" || in[0].Hostname != "imap.mail.test" || in[0].Port != 993 || in[1].Type != "pop3" {
		t.Errorf("incoming servers = %+v", in)
	}
}
