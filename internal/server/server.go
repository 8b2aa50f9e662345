// Package server runs Letterbox's listeners over one store: IMAP (STARTTLS), IMAPS, POP3
// (STLS), POP3S, LMTP (TCP or a unix socket) and HTTP (health). `letterbox serve` and the
// in-process test server start the same thing through New, Start and Shutdown.
//
// Implementation notes:
//
//   - Every listener is bound before any is served, so a port conflict fails Start cleanly
//     with nothing left running. An empty address disables a listener; port 0 binds a free
//     port, and Addr tells which.
//   - Once all are bound, each listener is logged on one line that contains "listening", its
//     protocol name and its real address (scripts and the acceptance suite read these).
//   - One protocol server serves both its plain and its implicit-TLS listener (IMAP and
//     IMAPS share one imap.Server), so server-wide state such as POP3's maildrop locks is
//     shared. Implicit TLS listeners are tls.NewListener wrappers; protocols recognise the
//     *tls.Conn and offer no STARTTLS/STLS on them.
//   - Every TLS handshake (implicit and STARTTLS/STLS) takes its certificate from one
//     atomically swapped pointer (tls.go); ReloadTLS replaces it on SIGHUP, so established
//     sessions keep theirs and a failed reload leaves the previous certificate in place.
//   - Every IMAP, IMAPS, POP3, POP3S and LMTP listener reads the PROXY protocol header
//     of connections from proxy.trusted_networks (internal/proxyproto) beneath every other
//     wrapper, so the connection limits, login penalties, plaintext policy, logs, traces
//     and metrics all see the client's address, and implicit TLS starts after the header.
//   - Every IMAP, POP3 and LMTP connection is registered in Sessions while it is open and,
//     with trace.dir, traced (internal/trace); that wrapper sits beneath TLS like the others.
//   - Shutdown stops every protocol at once under one deadline: each stops accepting, lets
//     sessions finish their current command, and closes them. The store is the caller's.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/connlimit"
	"github.com/letterbox-mail/letterbox/internal/inspector"
	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/proxyproto"
	"github.com/letterbox-mail/letterbox/internal/sessions"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Listener names, as Addr takes them and the "listening" log lines show them.
const (
	IMAP  = "imap"
	IMAPS = "imaps"
	POP3  = "pop3"
	POP3S = "pop3s"
	LMTP  = "lmtp"
	HTTP  = "http"
)

// Protocol is a protocol server as internal/server drives it. Serve may be called for several
// listeners (plain and implicit TLS); it blocks and returns nil after Shutdown.
type Protocol interface {
	Serve(l net.Listener) error
	Shutdown(ctx context.Context) error
}

// Server owns the listeners and their protocol servers.
type Server struct {
	cfg       *config.Config
	st        *store.Store
	log       *slog.Logger
	tlsConfig *tls.Config
	certs     *certSource // behind tlsConfig.GetCertificate; nil without TLS (ReloadTLS)
	auth      *auth.Authenticator
	limiter   *connlimit.Limiter
	mux       *http.ServeMux
	metrics   *metrics.Recorder  // private registry, served on /metrics (hosting.go)
	sessions  *sessions.Registry // live IMAP, POP3 and LMTP sessions (trace.go)

	inspector *inspector.Inspector // nil unless inspector.enabled (inspector.go)

	mu        sync.Mutex
	started   bool
	stopping  bool
	listeners []*listener
	protocols []Protocol // each once, in start order
	serving   sync.WaitGroup
	errc      chan error
}

type listener struct {
	name  string
	l     net.Listener
	proto Protocol
}

// New prepares a server for cfg over st; it checks the TLS and protocol settings but opens
// nothing until Start.
func New(cfg *config.Config, st *store.Store, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsConfig, certs, err := newTLS(cfg)
	if err != nil {
		return nil, err
	}
	if tlsConfig == nil && (cfg.IMAPS.Addr != "" || cfg.POP3S.Addr != "") {
		return nil, errors.New("server: imaps.addr and pop3s.addr need TLS (tls.cert and tls.key, or tls.self_signed)")
	}
	s := &Server{
		cfg:       cfg,
		st:        st,
		log:       logger,
		tlsConfig: tlsConfig,
		certs:     certs,
		auth: &auth.Authenticator{
			Store:        st,
			FailureDelay: cfg.Auth.FailureDelay,
			Penalty: auth.Penalty{MaxFailures: cfg.Auth.MaxFailures,
				Window: cfg.Auth.FailureWindow, BlockDuration: cfg.Auth.BlockDuration},
			Plaintext: plaintextPolicy(cfg.Auth),
			Logger:    logger,
		},
		limiter: &connlimit.Limiter{MaxTotal: cfg.Limits.MaxConnections,
			MaxPerIP: cfg.Limits.MaxConnectionsPerIP, MaxUserIP: cfg.Limits.MaxUserIPConnections,
			Exempt: cfg.Auth.TrustedNetworks},
		mux:      http.NewServeMux(),
		sessions: sessions.NewRegistry(),
		errc:     make(chan error, 8),
	}
	if st != nil && st.SharesLoginPenalties() {
		// A PostgreSQL store: the nodes of the cluster share failure counts and blocks.
		s.auth.Shared = st
	}
	if err := s.checkProtocolOptions(); err != nil {
		return nil, err
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mountHosting()
	s.mountPprof()
	if err := s.mountAPI(); err != nil {
		return nil, err
	}
	if err := s.mountInspector(); err != nil {
		return nil, err
	}
	return s, nil
}

func plaintextPolicy(a config.Auth) auth.PlaintextPolicy {
	p := auth.PlaintextPolicy{Trusted: a.TrustedNetworks}
	if a.AllowPlaintext != nil {
		p.Always = *a.AllowPlaintext
		p.Never = !*a.AllowPlaintext
	}
	return p
}

// connRefusals answers a connection over limits.max_connections(_per_ip) in its
// protocol's words; HTTP is not limited here.
var connRefusals = map[string][]byte{
	IMAP: connlimit.RefuseIMAP, IMAPS: connlimit.RefuseIMAP,
	POP3: connlimit.RefusePOP3, POP3S: connlimit.RefusePOP3,
	LMTP: connlimit.RefuseLMTP,
}

// Mux is the HTTP listener's request router; later features (metrics, autoconfiguration,
// the test API) register their handlers on it before Start.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// TLSConfig is the TLS configuration the protocols use; nil without TLS.
func (s *Server) TLSConfig() *tls.Config { return s.tlsConfig }

// Authenticator is the login checker the protocols share.
func (s *Server) Authenticator() *auth.Authenticator { return s.auth }

// Start binds every configured listener, logs them, and serves them in the background. It
// returns once all are listening. ctx only bounds the start itself.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.started = true
	if err := s.prepareTraceDir(); err != nil {
		return err
	}

	type spec struct {
		name, addr  string
		implicitTLS bool
		proto       func() Protocol
	}
	var imapProto, pop3Proto Protocol
	imapOnce := func() Protocol {
		if imapProto == nil {
			imapProto = s.newIMAP()
		}
		return imapProto
	}
	pop3Once := func() Protocol {
		if pop3Proto == nil {
			pop3Proto = s.newPOP3()
		}
		return pop3Proto
	}
	specs := []spec{
		{IMAP, s.cfg.IMAP.Addr, false, imapOnce},
		{IMAPS, s.cfg.IMAPS.Addr, true, imapOnce},
		{POP3, s.cfg.POP3.Addr, false, pop3Once},
		{POP3S, s.cfg.POP3S.Addr, true, pop3Once},
		{LMTP, s.cfg.LMTP.Addr, false, s.newLMTP},
		{HTTP, s.cfg.HTTP.Addr, false, s.newHTTP},
	}

	var bound []*listener
	closeAll := func() {
		for _, b := range bound {
			b.l.Close()
		}
	}
	for _, sp := range specs {
		if sp.addr == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			closeAll()
			return err
		}
		l, err := Listen(sp.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("server: %s: %w", sp.name, err)
		}
		if sp.name != HTTP {
			// Beneath everything else: from here on RemoteAddr is the client's, also
			// behind a trusted proxy, and the header is read before any TLS handshake.
			l = proxyproto.NewListener(l, proxyproto.Options{Trusted: s.cfg.Proxy.TrustedNetworks,
				Required: s.cfg.Proxy.Required, Protocol: sp.name, Logger: s.log})
		}
		if refusal, ok := connRefusals[sp.name]; ok {
			if sp.implicitTLS {
				refusal = nil // no TLS session to answer in yet: just close
			}
			l = connlimit.NewListener(l, s.limiter, refusal, sp.name, s.log)
		}
		if sp.name != HTTP {
			l = s.metrics.Listener(l, metricsProtocol[sp.name])
			l = s.traceListener(l, sp.name, sp.implicitTLS)
		}
		if sp.implicitTLS {
			l = tls.NewListener(l, s.tlsConfig)
		}
		bound = append(bound, &listener{name: sp.name, l: l, proto: sp.proto()})
	}
	if len(bound) == 0 {
		return errors.New("server: every listener is disabled")
	}

	seen := map[Protocol]bool{}
	for _, b := range bound {
		if !seen[b.proto] {
			seen[b.proto] = true
			s.protocols = append(s.protocols, b.proto)
		}
	}
	s.listeners = bound
	for _, b := range bound {
		s.log.Info("listening", "protocol", b.name, "addr", displayAddr(b.l))
		s.serving.Add(1)
		go s.serve(b)
	}
	return nil
}

func (s *Server) serve(b *listener) {
	defer s.serving.Done()
	err := b.proto.Serve(b.l)
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if err != nil && !stopping {
		s.log.Error("listener failed", "protocol", b.name, "err", err)
		select {
		case s.errc <- fmt.Errorf("server: %s: %w", b.name, err):
		default:
		}
	}
}

// Err reports a listener that stopped by itself (not through Shutdown); the server is then
// incomplete and its owner should shut it down.
func (s *Server) Err() <-chan error { return s.errc }

// Addr is the bound address of a listener (IMAP, IMAPS, POP3, POP3S, LMTP, HTTP), or nil
// if it is disabled or the server has not started.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.listeners {
		if b.name == name {
			return b.l.Addr()
		}
	}
	return nil
}

// Shutdown stops every protocol: no new connections, sessions finish their current command
// and end. It returns when all have stopped or ctx ends (then sessions are cut off and
// ctx's error is returned). The store stays open.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping || !s.started {
		s.mu.Unlock()
		return nil
	}
	s.stopping = true
	protocols := s.protocols
	s.mu.Unlock()

	start := time.Now()
	errs := make([]error, len(protocols))
	var wg sync.WaitGroup
	for i, p := range protocols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Shutdown(ctx)
		}()
	}
	wg.Wait()
	for _, b := range s.listeners {
		b.l.Close() // in case a protocol did not (closing twice is harmless)
	}

	served := make(chan struct{})
	go func() {
		s.serving.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("server: listeners still serving: %w", ctx.Err()))
	}
	err := errors.Join(errs...)
	s.log.Info("stopped", "duration", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// httpProtocol adapts http.Server to Protocol.
type httpProtocol struct{ srv *http.Server }

func (h httpProtocol) Serve(l net.Listener) error {
	if err := h.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (h httpProtocol) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		h.srv.Close()
	}
	return err
}

func (s *Server) newHTTP() Protocol {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.With("protocol", "http").Handler(), slog.LevelWarn),
	}
	if s.inspector != nil {
		// Its event streams never go idle by themselves: end them as shutdown begins.
		srv.RegisterOnShutdown(s.inspector.Shutdown)
	}
	return httpProtocol{srv: srv}
}

// pinger is implemented by a store that can check its database cheaply.
type pinger interface {
	Ping(ctx context.Context) error
}

// healthz answers 200 "ok" when the store answers a trivial query, 503 otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var err error
	if p, ok := any(s.st).(pinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = s.st.HighestModSeq(ctx, 0) // no account 0: one indexed read
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		s.log.Warn("health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	fmt.Fprintln(w, "ok")
}
