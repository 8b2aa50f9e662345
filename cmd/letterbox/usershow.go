package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// parseProtocols reads --protocols: a comma-separated list of imap and pop3, or "all"
// (or empty) for no restriction.
func parseProtocols(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch p {
		case "", "all":
		case store.ProtocolIMAP, store.ProtocolPOP3:
			out = append(out, p)
		default:
			return nil, withCode(exitUsage, fmt.Errorf("--protocols: %q is not imap or pop3 (or all)", p))
		}
	}
	return out, nil
}

func protocolList(a store.Account) string {
	if len(a.Protocols) == 0 {
		return "all (imap, pop3)"
	}
	return strings.Join(a.Protocols, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newUserShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ADDRESS",
		Short: "Show a user: limits, usage and mailboxes",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			a, err := st.LookupAccount(ctx, args[0])
			if err != nil {
				return storeError(err, args[0])
			}
			if a.Address != strings.ToLower(strings.TrimSpace(args[0])) {
				// LookupAccount also finds a bare-name account for name@any.domain; show
				// only what was asked for.
				return storeError(store.ErrNoSuchAccount, args[0])
			}
			boxes, err := st.Mailboxes(ctx, a.ID)
			if err != nil {
				return storeError(err)
			}
			aliases, err := st.Aliases(ctx)
			if err != nil {
				return storeError(err)
			}
			var mine []string
			for _, al := range aliases {
				if al.AccountID == a.ID {
					mine = append(mine, al.Address)
				}
			}
			aliasList := "none"
			if len(mine) > 0 {
				aliasList = strings.Join(mine, ", ")
			}
			quota, used := "none", datasize.Format(a.UsedBytes)
			if a.QuotaBytes > 0 {
				quota = datasize.Format(a.QuotaBytes)
				used += fmt.Sprintf(" (%d%% of quota)", a.UsedBytes*100/a.QuotaBytes)
			}
			quotaMsgs, msgs := "none", fmt.Sprint(a.Messages)
			if a.QuotaMessages > 0 {
				quotaMsgs = fmt.Sprint(a.QuotaMessages)
				msgs += fmt.Sprintf(" (%d%% of quota)", a.Messages*100/a.QuotaMessages)
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "address:\t%s\n", a.Address)
			fmt.Fprintf(w, "created:\t%s\n", a.Created.UTC().Format(time.RFC3339))
			fmt.Fprintf(w, "disabled:\t%s\n", yesNo(a.Disabled))
			fmt.Fprintf(w, "protocols:\t%s\n", protocolList(a))
			fmt.Fprintf(w, "quota:\t%s\n", quota)
			fmt.Fprintf(w, "used:\t%s\n", used)
			fmt.Fprintf(w, "used bytes:\t%d\n", a.UsedBytes)
			fmt.Fprintf(w, "quota messages:\t%s\n", quotaMsgs)
			fmt.Fprintf(w, "messages:\t%s\n", msgs)
			fmt.Fprintf(w, "aliases:\t%s\n", aliasList)
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(out, "mailboxes:")
			w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "  NAME\tMESSAGES\tUNSEEN\tSIZE")
			for _, m := range boxes {
				s, err := st.Status(ctx, m.ID)
				if err != nil {
					return storeError(err)
				}
				fmt.Fprintf(w, "  %s\t%d\t%d\t%s\n", m.Name, s.Messages, s.Unseen, datasize.Format(s.Size))
			}
			return w.Flush()
		}),
	}
}

func newUserModCmd() *cobra.Command {
	var quota, quotaMessages, protocols string
	var disable, enable bool
	cmd := &cobra.Command{
		Use:   "mod ADDRESS [--quota SIZE] [--quota-messages N] [--protocols imap,pop3|all] [--disable | --enable]",
		Short: "Change a user's quota, allowed protocols or disabled state",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if disable && enable {
				return withCode(exitUsage, errors.New("give either --disable or --enable, not both"))
			}
			f := cmd.Flags()
			if !f.Changed("quota") && !f.Changed("quota-messages") && !f.Changed("protocols") && !disable && !enable {
				return withCode(exitUsage, errors.New("nothing to change: give --quota, --quota-messages, --protocols, --disable or --enable"))
			}
			quotaMsgs, err := parseMessageQuota(quotaMessages)
			if err != nil {
				return err
			}
			var quotaBytes int64
			if f.Changed("quota") {
				q, err := parseQuota(quota)
				if err != nil {
					return err
				}
				quotaBytes = q
			}
			var protos []string
			if f.Changed("protocols") {
				p, err := parseProtocols(protocols)
				if err != nil {
					return err
				}
				protos = p
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, address := cmd.Context(), args[0]
			if f.Changed("quota") {
				if err := st.SetQuota(ctx, address, quotaBytes); err != nil {
					return storeError(err, address)
				}
			}
			if f.Changed("quota-messages") {
				if err := st.SetQuotaMessages(ctx, address, quotaMsgs); err != nil {
					return storeError(err, address)
				}
			}
			if f.Changed("protocols") {
				if err := st.SetProtocols(ctx, address, protos); err != nil {
					return storeError(err, address)
				}
			}
			if disable || enable {
				if err := st.SetAccountDisabled(ctx, address, disable); err != nil {
					return storeError(err, address)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s changed\n", address)
			return nil
		},
	}
	cmd.Flags().StringVar(&quota, "quota", "", "storage quota, e.g. 500M or 2GiB (powers of 1024); 0 or none for unlimited")
	cmd.Flags().StringVar(&quotaMessages, "quota-messages", "", "quota in number of messages; 0 or none for unlimited")
	cmd.Flags().StringVar(&protocols, "protocols", "", "protocols the user may log in with: imap, pop3, or both (all)")
	cmd.Flags().BoolVar(&disable, "disable", false, "refuse the user's logins (mail is still delivered)")
	cmd.Flags().BoolVar(&enable, "enable", false, "allow the user's logins again")
	return cmd
}

// parseQuota reads --quota of user mod: a size, or 0/none for no quota.
func parseQuota(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0", "none", "unlimited":
		return 0, nil
	}
	q, err := datasize.Parse(s)
	if err != nil {
		return 0, withCode(exitUsage, fmt.Errorf("--quota: %w", err))
	}
	return q, nil
}

// parseMessageQuota reads --quota-messages: a number of messages, or ""/0/none for none.
func parseMessageQuota(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "none", "unlimited":
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, withCode(exitUsage, fmt.Errorf("--quota-messages: want a number of messages or none, got %q", s))
	}
	return n, nil
}
