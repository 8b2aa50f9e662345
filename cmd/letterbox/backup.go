package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/store"
)

func newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the store to FILE, also while serve runs",
		Long: `Write a consistent copy of the store's database to FILE. This works while 'serve'
runs: deliveries and sessions carry on meanwhile. FILE is replaced only once the copy
is complete. To restore it, stop Letterbox and run 'letterbox restore FILE'.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			if err := st.Backup(cmd.Context(), args[0]); err != nil {
				return withCode(exitCantCrt, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s\n", args[0])
			return nil
		}),
	}
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
