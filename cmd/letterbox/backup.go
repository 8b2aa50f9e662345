package main

import (
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
is complete. To restore, stop Letterbox and put FILE in the data directory as
letterbox.db.`,
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
