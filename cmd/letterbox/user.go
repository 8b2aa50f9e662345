package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, change, delete and list users",
		Long: `Manage accounts. A user name is an address (alice@example.com) or a bare name
(alice); a bare-name account also receives mail for that name at any domain.`,
	}
	cmd.AddCommand(newUserAddCmd(), newUserPasswdCmd(), newUserDelCmd(), newUserListCmd(),
		newUserShowCmd(), newUserModCmd())
	return cmd
}

// passwordFlags are the two ways to give a password.
type passwordFlags struct {
	password string
	stdin    bool
}

func (p *passwordFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.password, "password", "", "the password (visible to other local users in the process list; prefer --password-stdin)")
	cmd.Flags().BoolVar(&p.stdin, "password-stdin", false, "read the password from the first line of standard input")
}

// read returns the password from the flag or from the first line of in (without its line
// ending). An empty password is refused.
func (p *passwordFlags) read(cmd *cobra.Command, in io.Reader) (string, error) {
	pw := p.password
	if p.stdin && cmd.Flags().Changed("password") {
		return "", withCode(exitUsage, errors.New("give either --password or --password-stdin, not both"))
	}
	switch {
	case p.stdin:
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	case !cmd.Flags().Changed("password"):
		return "", withCode(exitUsage, errors.New("give the password with --password-stdin or --password"))
	}
	if pw == "" {
		return "", withCode(exitUsage, errors.New("the password must not be empty"))
	}
	return pw, nil
}

func newUserAddCmd() *cobra.Command {
	var pf passwordFlags
	var quota, quotaMessages, protocols string
	var disable bool
	cmd := &cobra.Command{
		Use:   "add ADDRESS [--password-stdin | --password P] [--quota SIZE] [--quota-messages N] [--protocols imap,pop3] [--disable]",
		Short: "Create a user with INBOX and the special-use folders",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var quotaBytes int64
			if quota != "" {
				q, err := datasize.Parse(quota)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("--quota: %w", err))
				}
				quotaBytes = q
			}
			quotaMsgs, err := parseMessageQuota(quotaMessages)
			if err != nil {
				return err
			}
			protos, err := parseProtocols(protocols)
			if err != nil {
				return err
			}
			pw, err := pf.read(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			acct, err := st.CreateAccount(cmd.Context(), store.NewAccount{
				Address: args[0], Password: pw, QuotaBytes: quotaBytes, QuotaMessages: quotaMsgs, Protocols: protos,
			})
			switch {
			case errors.Is(err, store.ErrAccountExists):
				return withCode(exitCantCrt, fmt.Errorf("user %s already exists", args[0]))
			case errors.Is(err, store.ErrAliasExists):
				return withCode(exitCantCrt, fmt.Errorf("%s is an alias (letterbox alias del it first)", args[0]))
			case err != nil:
				return storeError(err)
			}
			if disable {
				if err := st.SetAccountDisabled(cmd.Context(), acct.Address, true); err != nil {
					return storeError(err, acct.Address)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s added\n", acct.Address)
			return nil
		},
	}
	pf.add(cmd)
	cmd.Flags().StringVar(&quota, "quota", "", "storage quota, e.g. 500M or 2GiB (powers of 1024); none by default")
	cmd.Flags().StringVar(&quotaMessages, "quota-messages", "", "quota in number of messages; none by default")
	cmd.Flags().StringVar(&protocols, "protocols", "", "protocols the user may log in with: imap, pop3, or both (the default)")
	cmd.Flags().BoolVar(&disable, "disable", false, "create the user disabled: mail is delivered, logins are refused")
	return cmd
}

func newUserPasswdCmd() *cobra.Command {
	var pf passwordFlags
	cmd := &cobra.Command{
		Use:   "passwd ADDRESS --password-stdin | --password P",
		Short: "Change a user's password",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := pf.read(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return storeError(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		},
	}
	pf.add(cmd)
	return cmd
}

func newUserDelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "del ADDRESS",
		Short: "Delete a user with all its folders and messages",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			if err := st.DeleteAccount(cmd.Context(), args[0]); err != nil {
				return storeError(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		}),
	}
}

func newUserListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users, one per line: address, messages, used size, quota (- for none)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			accts, err := st.Accounts(cmd.Context())
			if err != nil {
				return storeError(err)
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			if isTerminal(out) { // scripts get one account per line, nothing else
				fmt.Fprintln(w, "ADDRESS\tMESSAGES\tUSED\tQUOTA")
			}
			for _, a := range accts { // the store lists them by address
				quota := "-"
				if a.QuotaBytes > 0 {
					quota = datasize.Format(a.QuotaBytes)
				}
				address := a.Address
				if a.Disabled {
					address += " (disabled)"
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", address, a.Messages, datasize.Format(a.UsedBytes), quota)
			}
			return w.Flush()
		}),
	}
}

// storeError gives a store error its exit code: 67 for an unknown user (named in the
// message), 75 for temporary trouble, 1 otherwise.
func storeError(err error, user ...string) error {
	switch {
	case errors.Is(err, store.ErrNoSuchAccount):
		if len(user) > 0 {
			return withCode(exitNoUser, fmt.Errorf("no such user: %s", user[0]))
		}
		return withCode(exitNoUser, err)
	case errors.Is(err, store.ErrTemporary):
		return withCode(exitTempFail, fmt.Errorf("%w (try again)", err))
	}
	return err
}

// isTerminal reports whether w is a terminal (and not a pipe or a file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
