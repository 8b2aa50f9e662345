package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/store"
)

// newAliasCmd is `letterbox alias`: addresses that deliver to another account. An alias
// receives mail (LMTP, deliver) but is no login name.
func newAliasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Add, delete and list aliases (addresses that deliver to another user)",
		Long: `Manage aliases. Mail for an alias (over LMTP or 'letterbox deliver') goes to its
user, with a +detail too (info+orders@example.com); an alias is not a login name. An
alias may not be a user's address, nor a user an alias's. Deleting a user deletes its
aliases.`,
	}
	cmd.AddCommand(newAliasAddCmd(), newAliasDelCmd(), newAliasListCmd())
	return cmd
}

func newAliasAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add ALIAS USER",
		Short: "Make ALIAS deliver to USER",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			alias, user := args[0], args[1]
			err := st.AddAlias(cmd.Context(), alias, user)
			switch {
			case errors.Is(err, store.ErrAliasExists):
				return withCode(exitCantCrt, fmt.Errorf("alias %s already exists", alias))
			case errors.Is(err, store.ErrAccountExists):
				return withCode(exitCantCrt, fmt.Errorf("%s is a user, it cannot be an alias", alias))
			case err != nil:
				return storeError(err, user)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "alias %s added for %s\n", alias, user)
			return nil
		}),
	}
}

func newAliasDelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "del ALIAS",
		Short: "Delete an alias",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			err := st.DeleteAlias(cmd.Context(), args[0])
			switch {
			case errors.Is(err, store.ErrNoSuchAlias):
				return withCode(exitNoUser, fmt.Errorf("no such alias: %s", args[0]))
			case err != nil:
				return storeError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "alias %s deleted\n", args[0])
			return nil
		}),
	}
}

func newAliasListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List aliases, one per line: alias, user",
		Args:  usageArgs(cobra.NoArgs),
		RunE: withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			aliases, err := st.Aliases(cmd.Context())
			if err != nil {
				return storeError(err)
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			if isTerminal(out) { // scripts get one alias per line, nothing else
				fmt.Fprintln(w, "ALIAS\tUSER")
			}
			for _, a := range aliases { // the store lists them by alias
				fmt.Fprintf(w, "%s\t%s\n", a.Address, a.Account)
			}
			return w.Flush()
		}),
	}
}
