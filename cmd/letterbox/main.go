// Command letterbox is the Letterbox mail server and its administration tool: `serve` runs
// the IMAP, POP3, LMTP and HTTP listeners; `user`, `deliver`, `import` and `backup` work on
// the same data directory, also while `serve` runs.
//
// Implementation notes:
//
//   - Every subcommand resolves its settings through internal/config (defaults < YAML file <
//     LETTERBOX_* environment < flags); --config, --data and --log-level work everywhere.
//   - Errors travel up as values; an exitError carries a sysexits(3) code for scripts and
//     MTAs (deliver's 67/75/65). main prints "letterbox: <error>" to stderr and exits with
//     that code (1 when none is given).
//   - Logs go to stderr through log/slog; stdout carries only what a command reports.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Exit codes from sysexits(3).
const (
	exitUsage    = 64 // EX_USAGE: bad command line
	exitDataErr  = 65 // EX_DATAERR: the input is not a message
	exitNoInput  = 66 // EX_NOINPUT: an input file cannot be read
	exitNoUser   = 67 // EX_NOUSER: no such user
	exitSoftware = 70 // EX_SOFTWARE: internal error
	exitCantCrt  = 73 // EX_CANTCREAT: an output file cannot be created
	exitTempFail = 75 // EX_TEMPFAIL: try again later
	exitConfig   = 78 // EX_CONFIG: configuration error
)

// exitError is an error with the process exit status it should cause.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "letterbox: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "letterbox",
		Short: "A mail access server: POP3, IMAP and LMTP over one store",
		Long: `Letterbox serves one mail store over POP3, IMAP4rev1 and LMTP, so that a mailbox
reads the same either way.

Settings come from, in rising priority: built-in defaults, a YAML file (--config FILE,
else ./letterbox.yaml if present), LETTERBOX_<KEY> environment variables (dots become
underscores: imap.addr -> LETTERBOX_IMAP_ADDR), then flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	config.AddGlobalFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
	})
	root.AddCommand(
		newServeCmd(),
		newUserCmd(),
		newAliasCmd(),
		newDeliverCmd(),
		newImportCmd(),
		newExportCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newStoreCmd(),
		newVersionCmd(),
	)
	return root
}

// usageArgs wraps a cobra argument validator so that its complaint exits with EX_USAGE.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return withCode(exitUsage, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
		}
		return nil
	}
}

// requireFlags checks flags that must be given (cobra's MarkFlagRequired would exit 1).
func requireFlags(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		if !cmd.Flags().Changed(name) {
			return withCode(exitUsage, fmt.Errorf("--%s is required (see %s --help)", name, cmd.CommandPath()))
		}
	}
	return nil
}

// loadConfig resolves the settings for cmd (its flags, the environment, the file).
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := config.Load(config.LoadOptions{Flags: cmd.Flags()})
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	return cfg, nil
}

// newLogger returns the process logger. Administrative commands log warnings and errors
// only, unless --log-level asks for more, so that their own output stays readable.
func newLogger(cfg *config.Config, cmd *cobra.Command, quiet bool) *slog.Logger {
	lc := cfg.Log
	if quiet && !cmd.Flags().Changed(config.FlagLogLevel) && lc.Level < slog.LevelWarn {
		lc.Level = slog.LevelWarn
	}
	log := lc.NewLogger(os.Stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	return log
}

// setup loads the configuration and opens the store for an administrative command.
// withStore makes the RunE of a command that needs only the store: it opens the store as
// configured, runs fn with it, and closes it.
func withStore(fn func(cmd *cobra.Command, args []string, st *store.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		_, st, _, err := setup(cmd)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(cmd, args, st)
	}
}

func setup(cmd *cobra.Command) (*config.Config, *store.Store, *slog.Logger, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	log := newLogger(cfg, cmd, true)
	st, err := openStore(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, st, log, nil
}

// storeOptions are the store's options as configured, for the store at url (store.url's
// spelling: empty for SQLite in the directory Open is given).
func storeOptions(cfg *config.Config, log *slog.Logger, url string) store.Options {
	return store.Options{
		URL:               url,
		Logger:            log,
		MmapSize:          cfg.Store.StoreMmapSize(),
		MaxMessageSize:    cfg.Limits.MessageSize,
		MaxHeaderSize:     cfg.Limits.StoreHeaderSize(),
		MaxMIMEDepth:      cfg.Limits.StoreMIMEDepth(),
		Folders:           cfg.Folders.Store(),
		QuotaGrace:        cfg.Quota.GraceFor,
		QuotaMessageGrace: cfg.Quota.MessageGraceFor,
		ExpungeRetention:  cfg.IMAP.StoreExpungeRetention(),
	}
}

// openStore opens (creating if missing) the store in the data directory, or the
// PostgreSQL store store.url names.
func openStore(cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(cfg.Data, storeOptions(cfg, log, cfg.Store.URL))
	if err != nil {
		code := exitSoftware
		if errors.Is(err, store.ErrTemporary) {
			code = exitTempFail
		}
		where := cfg.Data
		if cfg.Store.Postgres() {
			where = cfg.Store.Redacted()
		}
		return nil, withCode(code, fmt.Errorf("opening the store in %s: %w", where, err))
	}
	return st, nil
}
