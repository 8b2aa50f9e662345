package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/pkg/mailimport"
	"github.com/letterbox-mail/letterbox/store"
)

func newImportCmd() *cobra.Command {
	var user, mailbox string
	cmd := &cobra.Command{
		Use:   "import --user ADDRESS [--mailbox NAME] PATH",
		Short: "Import the messages of an mbox file or a Maildir",
		Long: `Import every message of PATH, an mbox file or a Maildir (a directory with cur/
and new/), into one folder of a user (default INBOX; created if missing).

mbox: messages are split at "From " lines (mboxrd quoting is undone) and dated by
that line. Maildir: messages keep their flags (S R F T D and Dovecot keywords) and are
dated by their file's time, in delivery order. Messages that are not messages (no
header) or too large are skipped and counted.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "user"); err != nil {
				return err
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			return runImport(cmd.Context(), st, cmd.OutOrStdout(), cmd.ErrOrStderr(), user, mailbox, args[0])
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user to import for (required)")
	cmd.Flags().StringVar(&mailbox, "mailbox", "", "the folder to import into (default INBOX)")
	return cmd
}

// importTarget stores messages into one folder and counts them.
type importTarget struct {
	ctx      context.Context
	st       *store.Store
	stderr   io.Writer
	acct     store.Account
	mailbox  string
	imported int
	skipped  int
}

func runImport(ctx context.Context, st *store.Store, stdout, stderr io.Writer, user, mailbox, path string) error {
	acct, err := st.LookupAccount(ctx, user)
	if err != nil {
		return storeError(err, user)
	}
	if mailbox != "" {
		if _, err := st.MailboxByName(ctx, acct.ID, mailbox); errors.Is(err, store.ErrNoSuchMailbox) {
			if _, err := st.CreateMailbox(ctx, acct.ID, mailbox, ""); err != nil && !errors.Is(err, store.ErrMailboxExists) {
				return storeError(err)
			}
			fmt.Fprintf(stdout, "created mailbox %s\n", mailbox)
		} else if err != nil {
			return storeError(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	t := &importTarget{ctx: ctx, st: st, stderr: stderr, acct: acct, mailbox: mailbox}
	kind := "mbox file"
	if fi.IsDir() {
		kind = "Maildir"
		err = t.maildir(path)
	} else {
		err = t.mbox(path)
	}
	summary := fmt.Sprintf("imported %d messages into %s %s from %s %s", t.imported, acct.Address, mailboxName(mailbox), kind, path)
	if t.skipped > 0 {
		summary += fmt.Sprintf(" (%d skipped)", t.skipped)
	}
	fmt.Fprintln(stdout, summary)
	return err
}

func (t *importTarget) mbox(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	defer f.Close()
	r := mailimport.NewMboxReader(f)
	for n := 1; ; n++ {
		msg, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, mailimport.ErrNotMbox) {
			return withCode(exitDataErr, fmt.Errorf("%s: %w", path, err))
		}
		if err != nil {
			return withCode(exitNoInput, fmt.Errorf("%s: %w", path, err))
		}
		if err := t.store(fmt.Sprintf("%s: message %d", path, n), msg.Body, nil, msg.Date); err != nil {
			return err
		}
	}
}

func (t *importTarget) maildir(dir string) error {
	msgs, err := mailimport.ReadMaildir(dir)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	for _, m := range msgs {
		f, err := os.Open(m.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue // moved by a running mail client since the listing
		}
		if err != nil {
			return withCode(exitNoInput, err)
		}
		err = t.store(m.Path, f, m.Flags, m.Date)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// store delivers one message; a message the store refuses as such is skipped, anything
// else stops the import.
func (t *importTarget) store(what string, r io.Reader, flags []string, date time.Time) error {
	_, err := t.st.Deliver(t.ctx, t.acct.ID, r, store.DeliverOptions{Mailbox: t.mailbox, Flags: flags, InternalDate: date})
	switch {
	case err == nil:
		t.imported++
		return nil
	case errors.Is(err, store.ErrNotMessage), errors.Is(err, store.ErrTooBig):
		t.skipped++
		fmt.Fprintf(t.stderr, "letterbox: %s skipped: %v\n", what, err)
		return nil
	case errors.Is(err, store.ErrOverQuota):
		return withCode(exitTempFail, fmt.Errorf("%s: %s is over quota; import stopped", what, t.acct.Address))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("import interrupted")
	default:
		return storeError(fmt.Errorf("%s: %w", what, err))
	}
}
