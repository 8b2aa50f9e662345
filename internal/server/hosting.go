package server

import (
	"github.com/letterbox-mail/letterbox/internal/autoconfig"
	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/metrics"
)

// metricsProtocol is the protocol label of each listener's connections: the implicit-TLS
// listeners count with their protocol.
var metricsProtocol = map[string]string{
	IMAP: metrics.IMAP, IMAPS: metrics.IMAP,
	POP3: metrics.POP3, POP3S: metrics.POP3,
	LMTP: metrics.LMTP,
}

// mountHosting creates the server's metrics recorder (a private Prometheus registry) and
// mounts what a hosting provider's users and monitoring fetch from the HTTP listener:
// GET /metrics and client autoconfiguration (internal/autoconfig). The store reports the
// duration of its write transactions to the recorder.
func (s *Server) mountHosting() {
	s.metrics = metrics.New()
	s.st.ObserveWrites(s.metrics.StoreOp)
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	autoconfig.New(autoconfigSettings(s.cfg, s)).Register(s.mux)
}

func autoconfigSettings(cfg *config.Config, s *Server) autoconfig.Settings {
	ep := func(e config.Endpoint) autoconfig.Endpoint {
		return autoconfig.Endpoint{Host: e.Host, Port: e.Port, TLS: e.TLS}
	}
	return autoconfig.Settings{
		IMAP:   ep(cfg.Public.IMAP),
		POP3:   ep(cfg.Public.POP3),
		SMTP:   ep(cfg.Public.SMTP),
		Logger: s.log.With("protocol", "http"),
	}
}

// Metrics is the server's metrics recorder.
func (s *Server) Metrics() *metrics.Recorder { return s.metrics }
