package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// `letterbox store copy --to TARGET [--from FILE]`: the whole store (or a backup file) into
// an empty store of either engine (store.Copy, store.CopyBackup; docs/operations.md).

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Work on the store as a whole (copy it into another store)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newStoreCopyCmd())
	return cmd
}

// copyTerminal decides whether copy progress goes to w as a line updated in place: on a
// terminal only. A variable so that tests can say either.
var copyTerminal = isTerminal

func newStoreCopyCmd() *cobra.Command {
	var to, from string
	cmd := &cobra.Command{
		Use:   "copy --to TARGET",
		Short: "Copy the whole store into an empty store, SQLite or PostgreSQL",
		Long: `Copy the whole store (the one --data, --store or store.url name, or with --from a
backup file written by 'letterbox backup') into TARGET, an empty store:

  postgres://USER:PASS@HOST:PORT/DB?sslmode=...   a PostgreSQL database (postgresql:// too)
  sqlite:///var/lib/letterbox-copy                an SQLite data directory (its letterbox.db)
  /var/lib/letterbox-copy                         the same, as a plain path

Everything is kept: accounts with their password hashes, quotas and protocols, aliases,
subscriptions, mailboxes with their UIDVALIDITY and UIDNEXT, messages with their UIDs,
flags, keywords, dates and modification sequences, and the change log (QRESYNC's
expunge tombstones), so that POP3 UIDLs and IMAP clients' caches stay valid. The search
index is rebuilt by the target's server in the background.

A TARGET that holds anything is refused, and nothing is written to it. The source is
read in one snapshot, so a server may keep running on it; but what it does after the
copy began is not in the copy. To move a server to another store, stop it, copy, and
start it on the copy.
On a terminal, progress is shown on stderr; the summary goes to stdout.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "to"); err != nil {
				return err
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cfg, cmd, true)
			return runStoreCopy(cmd, cfg, log, from, to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the empty target store: a postgres:// URL, or an SQLite data directory (sqlite:///DIR or DIR)")
	cmd.Flags().StringVar(&from, "from", "", "copy this backup file (from 'letterbox backup') instead of the configured store")
	return cmd
}

// copyTarget is a parsed --to.
type copyTarget struct {
	dir  string // the SQLite data directory; "" for PostgreSQL
	url  string // the PostgreSQL URL; "" for SQLite
	name string // for messages, without a password
}

func parseCopyTarget(to string) (copyTarget, error) {
	if store.IsPostgresURL(to) {
		return copyTarget{url: to, name: config.Store{URL: to}.Redacted()}, nil
	}
	dir := to
	if rest, ok := strings.CutPrefix(to, "sqlite:"); ok {
		dir = rest
		if r, ok := strings.CutPrefix(rest, "//"); ok {
			// sqlite:///abs/dir: an empty authority, then an absolute path.
			if !strings.HasPrefix(r, "/") {
				return copyTarget{}, fmt.Errorf("--to %s: want sqlite:///ABSOLUTE/DIR or sqlite:DIR (no host)", to)
			}
			dir = r
		}
	} else if strings.Contains(to, "://") {
		return copyTarget{}, fmt.Errorf("--to %s: want a postgres:// URL, sqlite:///DIR or a directory", config.Store{URL: to}.Redacted())
	}
	if dir == "" {
		return copyTarget{}, fmt.Errorf("--to %s: no directory", to)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return copyTarget{}, fmt.Errorf("--to %s: not a directory: an SQLite target is a data directory, whose %s the copy creates", to, store.DBFile)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return copyTarget{}, fmt.Errorf("--to %s: %w", to, err)
	}
	return copyTarget{dir: abs, name: "sqlite://" + abs}, nil
}

func runStoreCopy(cmd *cobra.Command, cfg *config.Config, log *slog.Logger, from, to string) error {
	ctx := cmd.Context()
	target, err := parseCopyTarget(to)
	if err != nil {
		return withCode(exitUsage, err)
	}
	source := cfg.Store.Redacted()
	switch {
	case from != "":
		if _, err := os.Stat(from); err != nil {
			return withCode(exitNoInput, fmt.Errorf("store copy: --from: %w", err))
		}
		source = from
	case cfg.Store.Postgres():
		if target.url == cfg.Store.URL {
			return withCode(exitUsage, fmt.Errorf("store copy: the target is the source (%s)", source))
		}
	default:
		data, err := filepath.Abs(cfg.Data)
		if err != nil {
			return withCode(exitNoInput, fmt.Errorf("store copy: %w", err))
		}
		if _, err := os.Stat(filepath.Join(data, store.DBFile)); err != nil {
			return withCode(exitNoInput, fmt.Errorf("store copy: no store to copy in %s (--data): %w", data, err))
		}
		if target.dir == data {
			return withCode(exitUsage, fmt.Errorf("store copy: the target is the source (%s)", data))
		}
		source = "sqlite://" + data
	}

	// Refuse a target that holds anything before opening it: Open would create its
	// schema, or migrate an older one.
	if err := store.CheckEmpty(ctx, target.dir, target.url); err != nil {
		return copyError(ctx, err, target, false)
	}

	var src *store.Store
	if from == "" {
		if src, err = openStore(cfg, log); err != nil {
			return err
		}
		defer src.Close()
	}
	spool := target.dir
	if target.url != "" {
		// A PostgreSQL store still has a spool directory; the copy spools nothing.
		if spool, err = os.MkdirTemp("", "letterbox-store-copy-"); err != nil {
			return withCode(exitCantCrt, fmt.Errorf("store copy: %w", err))
		}
		defer os.RemoveAll(spool)
	}
	dst, err := store.Open(spool, storeOptions(cfg, log, target.url))
	if err != nil {
		code := exitCantCrt
		if errors.Is(err, store.ErrTemporary) {
			code = exitTempFail
		}
		return withCode(code, fmt.Errorf("store copy: opening the target %s: %w", target.name, err))
	}
	defer dst.Close()

	rep := &copyReporter{w: cmd.ErrOrStderr(), terminal: copyTerminal(cmd.ErrOrStderr())}
	var done store.CopyProgress
	if src != nil {
		done, err = store.Copy(ctx, src, dst, rep.report)
	} else {
		done, err = store.CopyBackup(ctx, from, dst, rep.report)
	}
	rep.finish()
	if err != nil {
		return copyError(ctx, err, target, done != (store.CopyProgress{}))
	}
	if err := dst.Close(); err != nil {
		return withCode(exitCantCrt, fmt.Errorf("store copy: closing the target %s: %w", target.name, err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "copied %d accounts, %d mailboxes, %d messages (%s) from %s to %s\n",
		done.Accounts, done.Mailboxes, done.Messages, datasize.Format(done.Bytes), source, target.name)
	return nil
}

// copyError is the command's error for a copy that failed; partial says the target may
// hold part of the copy. A copy interrupted (ctx, SIGINT) or failing for a reason that may
// pass exits EX_TEMPFAIL.
func copyError(ctx context.Context, err error, target copyTarget, partial bool) error {
	if errors.Is(err, store.ErrNotEmpty) {
		detail := strings.TrimPrefix(err.Error(), store.ErrNotEmpty.Error()+": ")
		return withCode(exitCantCrt, fmt.Errorf("store copy: the target %s is not empty (%s); nothing was written. Copy into a new data directory or an empty database", target.name, detail))
	}
	code := 1
	if errors.Is(err, store.ErrTemporary) || ctx.Err() != nil {
		code = exitTempFail
	}
	if partial {
		how := "drop and create the database again"
		if target.url == "" {
			how = "remove " + filepath.Join(target.dir, store.DBFile)
		}
		err = fmt.Errorf("%w; the target %s holds part of the copy: %s before trying again", err, target.name, how)
	}
	return withCode(code, err) // the store's errors say "store: copy: ..."
}

// copyReporter shows a copy's progress: on a terminal, one line on w updated in place;
// elsewhere nothing (the command's summary line says what was copied).
type copyReporter struct {
	w        io.Writer
	terminal bool
	shown    time.Time // when the line was last written
	last     store.CopyProgress
	wrote    bool
}

// copyRefresh is how often the line is rewritten at most.
const copyRefresh = 200 * time.Millisecond

func (r *copyReporter) report(p store.CopyProgress) {
	if !r.terminal {
		return
	}
	if r.wrote && p == r.last {
		return
	}
	r.last = p
	complete := p.Messages == p.MessagesTotal && p.Bytes == p.BytesTotal
	if r.wrote && !complete && time.Since(r.shown) < copyRefresh {
		return
	}
	r.write()
}

func (r *copyReporter) write() {
	p := r.last
	pct := 100.0
	if p.BytesTotal > 0 {
		pct = 100 * float64(p.Bytes) / float64(p.BytesTotal)
	}
	// \r and erase to the end of the line (ECMA-48 EL): the line is rewritten in place.
	fmt.Fprintf(r.w, "\r\x1b[Kcopying: %d/%d messages, %s/%s (%.0f%%), %d accounts, %d mailboxes",
		p.Messages, p.MessagesTotal, datasize.Format(p.Bytes), datasize.Format(p.BytesTotal), pct, p.Accounts, p.Mailboxes)
	r.shown = time.Now()
	r.wrote = true
}

// finish ends the line: its last state, then a newline.
func (r *copyReporter) finish() {
	if !r.terminal || !r.wrote {
		return
	}
	r.write()
	fmt.Fprintln(r.w)
}
