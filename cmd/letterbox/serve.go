package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/server"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// shutdownTimeout bounds a graceful stop: sessions get this long to finish their current
// command before they are cut off (well within the 10 s a service manager usually allows).
const shutdownTimeout = 8 * time.Second

func newServeCmd() *cobra.Command {
	var demo, testing bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the IMAP, POP3, LMTP and HTTP listeners until SIGINT or SIGTERM",
		Long: `Run every configured listener until SIGINT or SIGTERM, then stop accepting, let
sessions finish their current command, and exit 0. SIGHUP reloads the TLS certificate
(tls.cert and tls.key) for new connections; sessions already open keep theirs.

An empty address disables a listener; port 0 binds a free port. Each listener is logged
on one line with "listening", its protocol and its real address. --trace DIR writes a
transcript of every IMAP, POP3 and LMTP session into DIR, credentials masked.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, demo, testing)
		},
	}
	config.AddServeFlags(cmd.Flags())
	cmd.Flags().BoolVar(&demo, "demo", false, "create the user demo@localhost (password demo) with sample messages, if absent; the web inspector on")
	cmd.Flags().BoolVar(&testing, "testing", false, "mode for test suites: the JSON API and the web inspector on (no token needed from loopback unless api.token is set), plaintext login on loopback, no demo data")
	return cmd
}

func runServe(cmd *cobra.Command, demo, testing bool) error {
	ctx := cmd.Context()
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	keepHeapFloor(cfg.GC.HeapFloor)
	log := newLogger(cfg, cmd, false)
	if testing {
		// Test suites log in with plaintext passwords over loopback, whatever the file says.
		if cfg.Auth.AllowPlaintext != nil && !*cfg.Auth.AllowPlaintext {
			cfg.Auth.AllowPlaintext = nil
		}
		demo = false
		// The JSON API on; without a token, open to loopback clients only.
		cfg.API.Enabled = true
		cfg.API.OpenOnLoopback = true
	}
	if testing || demo {
		// The web inspector at / (loopback only without api.token).
		cfg.Inspector.Enabled = true
	}
	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	if demo {
		if err := seedDemo(ctx, st, log); err != nil {
			return fmt.Errorf("--demo: %w", err)
		}
	}

	// SIGHUP reloads the TLS certificate (ReloadTLS logs the outcome; on error the old one
	// stays); it never stops the server, not even while it is starting.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	server.Version = version
	srv, err := server.New(cfg, st, log)
	if err != nil {
		return withCode(exitConfig, err)
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	log.Info("letterbox started", "version", version, "data", cfg.Data, "pid", os.Getpid())

	var failed error
wait:
	for {
		select {
		case <-hup:
			_ = srv.ReloadTLS()
		case <-ctx.Done():
			log.Info("signal received, shutting down")
			break wait
		case failed = <-srv.Err():
			log.Error("shutting down after a listener failed", "err", failed)
			break wait
		}
	}
	// A second signal ends the process at once, the usual way.
	signal.Reset(os.Interrupt, syscall.SIGTERM)

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("sessions did not finish in time and were closed", "err", err)
	}
	if err := st.Close(); err != nil {
		log.Error("closing the store", "err", err)
		if failed == nil {
			failed = err
		}
	}
	return failed
}

// demoFS holds the sample messages of --demo, delivered in name order.
//
//go:embed demo/*.eml
var demoFS embed.FS

// Demo account credentials, as README.md and the help of `serve --demo` give them.
const (
	demoAddress  = "demo@localhost"
	demoPassword = "demo"
)

// demoFlags gives some sample messages flags, so a client shows a lived-in mailbox.
var demoFlags = map[string][]string{
	"1-welcome.eml":    {store.FlagSeen},
	"2-report.eml":     {store.FlagSeen, store.FlagFlagged},
	"3-greetings.eml":  nil,
	"4-newsletter.eml": nil,
}

// seedDemo creates the demo account with its sample messages, unless it exists.
func seedDemo(ctx context.Context, st *store.Store, log *slog.Logger) error {
	if _, err := st.LookupAccount(ctx, demoAddress); err == nil {
		log.Info("demo account exists; left as it is", "address", demoAddress)
		return nil
	} else if !errors.Is(err, store.ErrNoSuchAccount) {
		return err
	}
	acct, err := st.CreateAccount(ctx, store.NewAccount{Address: demoAddress, Password: demoPassword})
	if err != nil {
		return err
	}
	entries, err := demoFS.ReadDir("demo")
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		f, err := demoFS.Open(path.Join("demo", e.Name()))
		if err != nil {
			return err
		}
		_, err = st.Deliver(ctx, acct.ID, f, store.DeliverOptions{Flags: demoFlags[e.Name()]})
		f.Close()
		if err != nil {
			return fmt.Errorf("sample %s: %w", e.Name(), err)
		}
	}
	log.Info("demo account created", "address", demoAddress, "messages", len(entries))
	return nil
}

// heapFloor is gc.heap_floor's allocation (config.GC): never read or written, it holds the
// collector's goal above it. Go sizes the heap to grow by GOGC percent (100) of what is live
// before the next collection; at a live heap of a few megabytes a FETCH of 10,000 bodies,
// which allocates 65 MB (every chunk copied out of SQLite into fresh memory), ran about 16
// collections, a quarter of the server's CPU (docs/performance.md). A []byte holds no
// pointers, so the collector never scans it, and memory fresh from the kernel is not
// zeroed by Go, so its pages are never touched and take no memory (its RSS stays that of
// the process without it). It is made first thing, when the heap is still fresh.
var heapFloor []byte

func keepHeapFloor(n int64) {
	if n > 0 && heapFloor == nil {
		heapFloor = make([]byte, n)
	}
}
