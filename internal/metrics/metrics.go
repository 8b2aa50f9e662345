// Package metrics counts what Letterbox's protocols do and serves it to Prometheus on the
// HTTP listener's /metrics.
//
// Implementation notes:
//
//   - A Recorder owns a private prometheus.Registry (never the global default one), so two
//     servers in one test process keep separate counts and no library registers series of
//     its own into ours behind our back. internal/server creates one Recorder per server.
//   - Connections and bytes sent are counted beneath the protocols, by wrapping each raw
//     listener (Listener) before any TLS: no protocol code is involved, implicit-TLS
//     listeners still hand the protocols *tls.Conn, and every connection is counted once
//     however its session ends. imaps counts as imap, pop3s as pop3.
//   - Protocols get a *Recorder in their Options for what only they know (commands, login
//     failures, delivery outcomes). Every method is safe on a nil *Recorder and then does
//     nothing, so a protocol server built without metrics (tests, tools) needs no checks at
//     its call sites.
//   - Label values are bounded sets chosen by the caller from constants (protocol names,
//     known command names, store's delivery outcomes, internal/auth's failure reasons);
//     nothing a client sends becomes a label value unchecked, so a hostile client cannot
//     make the series count grow. Command and outcome labels are folded to lower case and
//     cut to a short length as a last guard.
//   - The packages that define the errors classify them (store.DeliveryOutcome,
//     auth.FailureReason), so this one imports neither: it needs only Prometheus.
//   - The listener's connections also count their own bytes in and out, which the
//     protocols read back (Transferred) for their logout lines.
//   - Series (all prefixed letterbox_):
//     connections{protocol} gauge and connections_total{protocol} counter;
//     commands_total{protocol,command}; login_failures_total{protocol,reason};
//     deliveries_total{via,outcome} (via: lmtp, append); bytes_sent_total{protocol};
//     store_operation_seconds{op} histogram (write transactions, commit included);
//     quota_rejections_total{via}; imap_clients{name} gauge (logged-in IMAP sessions by
//     the client their ID names, from internal/protocol/imap's fixed list).
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Protocol label values.
const (
	POP3 = "pop3"
	IMAP = "imap"
	LMTP = "lmtp"
)

// Delivery paths (the via label of deliveries_total and quota_rejections_total). `letterbox
// deliver` runs in a process of its own and is not counted.
const (
	ViaLMTP   = "lmtp"
	ViaAppend = "append"
	ViaCopy   = "copy"
)

// overQuota is the outcome (store.OutcomeOverQuota) that Delivery also counts as a quota
// rejection; a test checks that the two agree.
const overQuota = "over_quota"

// maxLabel bounds a label value's length (a guard; callers pass constants).
const maxLabel = 32

// Recorder records Letterbox's metrics. The zero value is not usable; a nil *Recorder is,
// and records nothing.
type Recorder struct {
	reg *prometheus.Registry

	conns        *prometheus.GaugeVec
	connsTotal   *prometheus.CounterVec
	commands     *prometheus.CounterVec
	loginFails   *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	bytesSent    *prometheus.CounterVec
	storeOps     *prometheus.HistogramVec
	quotaRejects *prometheus.CounterVec
	imapClients  *prometheus.GaugeVec
}

// New returns a Recorder with its own registry, which also carries the Go runtime and
// process collectors.
func New() *Recorder {
	r := &Recorder{reg: prometheus.NewRegistry()}
	r.conns = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "letterbox", Name: "connections",
		Help: "Client connections open now, by protocol.",
	}, []string{"protocol"})
	r.connsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "connections_total",
		Help: "Client connections accepted, by protocol.",
	}, []string{"protocol"})
	r.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "commands_total",
		Help: "Commands received, by protocol and command (unknown commands as \"unknown\").",
	}, []string{"protocol", "command"})
	r.loginFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "login_failures_total",
		Help: "Refused logins, by protocol and reason.",
	}, []string{"protocol", "reason"})
	r.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "deliveries_total",
		Help: "Messages offered for storage, by path (lmtp, append) and outcome.",
	}, []string{"via", "outcome"})
	r.bytesSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "bytes_sent_total",
		Help: "Bytes written to clients on the wire (TLS records included), by protocol.",
	}, []string{"protocol"})
	r.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "letterbox", Name: "store_operation_seconds",
		Help:    "Duration of store write transactions, commit included, by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op"})
	r.quotaRejects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "letterbox", Name: "quota_rejections_total",
		Help: "Messages refused because the account is over its quota, by path.",
	}, []string{"via"})
	r.imapClients = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "letterbox", Name: "imap_clients",
		Help: "Logged-in IMAP sessions open now, by the client program their ID names (a fixed list; \"other\", \"none\" without ID).",
	}, []string{"name"})
	r.reg.MustRegister(r.conns, r.connsTotal, r.commands, r.loginFails, r.deliveries,
		r.bytesSent, r.storeOps, r.quotaRejects, r.imapClients,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Registry is the Recorder's private registry.
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// Handler serves the metrics in the Prometheus text (or negotiated) exposition format.
func (r *Recorder) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

func label(s string) string {
	s = strings.ToLower(s)
	if len(s) > maxLabel {
		s = s[:maxLabel]
	}
	return s
}

// ConnOpened counts a new connection of protocol; pair it with ConnClosed.
func (r *Recorder) ConnOpened(protocol string) {
	if r == nil {
		return
	}
	r.conns.WithLabelValues(protocol).Inc()
	r.connsTotal.WithLabelValues(protocol).Inc()
}

// ConnClosed counts a connection of protocol as gone.
func (r *Recorder) ConnClosed(protocol string) {
	if r == nil {
		return
	}
	r.conns.WithLabelValues(protocol).Dec()
}

// Command counts one command. command must come from the protocol's own table of known
// commands; pass "unknown" for anything else.
func (r *Recorder) Command(protocol, command string) {
	if r == nil {
		return
	}
	r.commands.WithLabelValues(protocol, label(command)).Inc()
}

// LoginFailed counts a refused login with one of internal/auth's Reason* values
// (auth.FailureReason).
func (r *Recorder) LoginFailed(protocol, reason string) {
	if r == nil {
		return
	}
	r.loginFails.WithLabelValues(protocol, label(reason)).Inc()
}

// Delivery counts one message offered for storage through via (Via*) with one of store's
// Outcome* values (store.DeliveryOutcome); an over-quota outcome also counts as a quota
// rejection.
func (r *Recorder) Delivery(via, outcome string) {
	if r == nil {
		return
	}
	r.deliveries.WithLabelValues(via, label(outcome)).Inc()
	if outcome == overQuota {
		r.quotaRejects.WithLabelValues(via).Inc()
	}
}

// QuotaRejected counts a refusal for quota that is not a delivery (COPY, MOVE).
func (r *Recorder) QuotaRejected(via string) {
	if r == nil {
		return
	}
	r.quotaRejects.WithLabelValues(via).Inc()
}

// BytesSent adds n bytes written to a client of protocol.
func (r *Recorder) BytesSent(protocol string, n int) {
	if r == nil || n <= 0 {
		return
	}
	r.bytesSent.WithLabelValues(protocol).Add(float64(n))
}

// StoreOp records how long one store operation took; op must be a bounded name.
func (r *Recorder) StoreOp(op string, d time.Duration) {
	if r == nil {
		return
	}
	r.storeOps.WithLabelValues(label(op)).Observe(d.Seconds())
}

// IMAPClientLoggedIn counts a logged-in IMAP session of the client program name, which
// must come from internal/protocol/imap's fixed list of known clients; pair it with
// IMAPClientLoggedOut.
func (r *Recorder) IMAPClientLoggedIn(name string) {
	if r == nil {
		return
	}
	r.imapClients.WithLabelValues(label(name)).Inc()
}

// IMAPClientLoggedOut counts a logged-in IMAP session of name as gone.
func (r *Recorder) IMAPClientLoggedOut(name string) {
	if r == nil {
		return
	}
	r.imapClients.WithLabelValues(label(name)).Dec()
}
