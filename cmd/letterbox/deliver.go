package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func newDeliverCmd() *cobra.Command {
	var to, mailbox, from string
	cmd := &cobra.Command{
		Use:   "deliver --to ADDRESS [--mailbox NAME] [--from SENDER] < message",
		Short: "Store one message from standard input (a local delivery agent)",
		Long: `Store one RFC 5322 message, read from standard input, for one user. This works
while 'serve' runs on the same data directory; IMAP clients in IDLE see the message
at once.

--to is resolved as LMTP resolves a recipient: an account, an alias, or either with a
detail (user+detail@example.com, lmtp.detail_delimiter). Without --mailbox, a detail
naming an existing folder delivers there (lmtp.detail_to_folder), else to INBOX.

--mailbox names the folder; if it does not exist the message goes to INBOX (as
Dovecot's LDA does) and a warning says so. --from adds a Return-Path header.

Exit status (sysexits):
  0   stored
  65  not a message (empty input, no header), larger than limits.message_size, a
      header section larger than limits.header_size or MIME nesting deeper than
      limits.mime_depth (refused for good: the sender should bounce it)
  67  no such user
  75  temporary failure: the store is busy, full or read-only, the user is over quota,
      or another problem worth retrying; the message was not stored`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "to"); err != nil {
				return err
			}
			cfg, st, log, err := setup(cmd)
			if err != nil {
				if ee := (*exitError)(nil); errors.As(err, &ee) && ee.code == exitConfig {
					return err
				}
				return withCode(exitTempFail, err)
			}
			defer st.Close()
			return deliver(cmd.Context(), cfg, st, log, cmd.InOrStdin(), to, mailbox, from, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the recipient: an address, alias or bare user name, with an optional +detail (required)")
	cmd.Flags().StringVar(&mailbox, "mailbox", "", "the folder to store into (default: the +detail's folder if it exists, else INBOX)")
	cmd.Flags().StringVar(&from, "from", "", "the envelope sender, recorded as Return-Path")
	return cmd
}

func deliver(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger, in io.Reader,
	to, mailbox, from string, stderr io.Writer) error {
	acct, detailBox, err := st.ResolveRecipient(ctx, to, cfg.LMTP.DetailDelimiter)
	if err != nil {
		if errors.Is(err, store.ErrNoSuchAccount) {
			return withCode(exitNoUser, fmt.Errorf("no such user: %s", to))
		}
		return withCode(exitTempFail, err)
	}
	if mailbox == "" && cfg.LMTP.DetailToFolder {
		mailbox = detailBox // an existing folder, or "" (INBOX)
	} else if mailbox != "" {
		if _, err := st.MailboxByName(ctx, acct.ID, mailbox); errors.Is(err, store.ErrNoSuchMailbox) {
			fmt.Fprintf(stderr, "letterbox: warning: %s has no mailbox %q; delivering to INBOX\n", acct.Address, mailbox)
			mailbox = ""
		} else if err != nil {
			return withCode(exitTempFail, err)
		}
	}
	br := bufio.NewReader(in)
	if _, err := br.Peek(1); err == io.EOF {
		return withCode(exitDataErr, errors.New("not a message: the input is empty"))
	} else if err != nil {
		return withCode(exitTempFail, fmt.Errorf("reading the message: %w", err))
	}
	opts := store.DeliverOptions{Mailbox: mailbox}
	if from != "" {
		opts.Prepend = []byte("Return-Path: <" + from + ">\r\n")
	}
	d, err := st.Deliver(ctx, acct.ID, br, opts)
	switch {
	case err == nil:
		log.Info("delivered", "to", acct.Address, "mailbox", mailboxName(mailbox), "uid", d.UID, "size", d.Size)
		return nil
	case errors.Is(err, store.ErrNotMessage):
		return withCode(exitDataErr, fmt.Errorf("not a message: %w", err))
	case errors.Is(err, store.ErrTooBig):
		return withCode(exitDataErr, fmt.Errorf("message larger than limits.message_size (%s)", datasize.Format(cfg.Limits.MessageSize)))
	case errors.Is(err, store.ErrHeaderTooBig):
		// A permanent failure of the message, as for its size: EX_DATAERR (sysexits.h:
		// "the input data was incorrect in some way"), which Postfix's pipe and local
		// delivery bounce; 75 would have them retry a message that can never be taken.
		return withCode(exitDataErr, fmt.Errorf("message refused: a header section larger than limits.header_size (%s)", datasize.Format(cfg.Limits.HeaderSize)))
	case errors.Is(err, store.ErrNestingTooDeep):
		return withCode(exitDataErr, fmt.Errorf("message refused: MIME nesting deeper than limits.mime_depth (%d levels)", cfg.Limits.MIMEDepth))
	case errors.Is(err, store.ErrNoSuchAccount):
		return withCode(exitNoUser, fmt.Errorf("no such user: %s", to))
	case errors.Is(err, store.ErrOverQuota):
		return withCode(exitTempFail, fmt.Errorf("%s is over quota", acct.Address))
	case errors.Is(err, store.ErrStorageFull):
		return withCode(exitTempFail, fmt.Errorf("mail storage full or read-only, try again later: %w", err))
	default: // store.ErrTemporary, and anything unforeseen: the sender should retry
		return withCode(exitTempFail, err)
	}
}

func mailboxName(name string) string {
	if name == "" {
		return "INBOX"
	}
	return name
}
