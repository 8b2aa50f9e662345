package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the store to FILE, also while serve runs",
		Long: `Write a consistent copy of the store's database to FILE. This works while 'serve'
runs: deliveries and sessions carry on meanwhile. FILE is replaced only once the copy
is complete. To restore it, stop Letterbox and run 'letterbox restore FILE'.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.Store.Postgres() {
				return notOnPostgres("backup", cfg)
			}
			return withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
				if err := st.Backup(cmd.Context(), args[0]); err != nil {
					return withCode(exitCantCrt, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s\n", args[0])
				return nil
			})(cmd, args)
		},
	}
}

// notOnPostgres is the answer of backup and restore when store.url names PostgreSQL: they
// copy an SQLite file, and a PostgreSQL store is backed up with PostgreSQL's own tools
// (docs/operations.md). It exits EX_CONFIG: the configuration names a store these commands do not
// handle, and nothing was done.
func notOnPostgres(what string, cfg *config.Config) error {
	return withCode(exitConfig, fmt.Errorf(`%s: the store is PostgreSQL (store.url %s), and 'letterbox backup' and 'restore' copy an SQLite store only; nothing was done.
Back a PostgreSQL store up with PostgreSQL's own tools: pg_dump (for example
  pg_dump --format=custom --file=letterbox.dump 'URL'
and pg_restore into an empty database to restore it), or your provider's replication and
point-in-time recovery. For an SQLite store to inspect, pg_restore the dump into a scratch
database and copy that into an empty SQLite data directory:
  letterbox store copy --store 'postgres://USER:PASS@HOST:PORT/SCRATCH' --to sqlite:///var/tmp/letterbox-copy
which keeps every UID, UIDVALIDITY and modseq (letterbox store copy --help). The live
database can be copied the same way: the copy reads it in one snapshot`, what, cfg.Store.Redacted()))
}

func newRestoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the store with a backup; serve must be stopped",
		Long: `Replace the data directory's database with FILE, a backup written by 'letterbox
backup'. Letterbox must be stopped: a database still in use is refused (exit 75).
FILE must pass SQLite's integrity check. The database replaced is kept beside it as
letterbox.db.before-restore-<time>, and UIDs, UIDVALIDITYs and modification sequences
it handed out after the backup are not handed out again, so that POP3 and IMAP clients
that saw them are not misled (docs/migration.md).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.Store.Postgres() {
				return notOnPostgres("restore", cfg)
			}
			kept, err := store.Restore(cmd.Context(), cfg.Data, args[0])
			switch {
			case errors.Is(err, store.ErrInUse):
				return withCode(exitTempFail, err)
			case err != nil:
				return withCode(exitDataErr, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s\n", args[0], cfg.Data)
			if kept != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "the database it replaced is kept as %s\n", kept)
			}
			return nil
		},
	}
}
