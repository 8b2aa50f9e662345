package store

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// SpooledMessage is one message of DeliverAll: spooled, with its flags and INTERNALDATE.
type SpooledMessage struct {
	Message      *Spooled  // from Spool; the caller closes it
	Flags        []string  // initial flags and keywords
	InternalDate time.Time // zero means now
}

// DeliverAll stores messages in one mailbox of an account in one write transaction, in
// their order and with consecutive UIDs (IMAP MULTIAPPEND, RFC 3502 §6.3.11: all are
// stored or none). The quota is checked for each as it is added, so a batch that would
// cross it is refused whole with ErrOverQuota. Errors are Deliver's.
func (s *Store) DeliverAll(ctx context.Context, accountID int64, mailbox string, msgs []SpooledMessage) ([]Delivered, error) {
	if mailbox == "" {
		mailbox = "INBOX"
	}
	now := s.now()
	var out []Delivered
	err := s.write(ctx, "deliver all", func(wt *writeTx) error {
		out = out[:0]
		m, err := wt.mailboxByName(accountID, mailbox)
		if err != nil {
			return err
		}
		uid := int64(m.UIDNext)
		for _, msg := range msgs {
			sp := msg.Message
			if err := wt.checkQuota(accountID, sp.size, 1); err != nil {
				return err
			}
			bodyID, err := wt.insertBody(sp.md, io.NewSectionReader(sp.data, 0, sp.size), sp.size)
			if err != nil {
				return err
			}
			date := msg.InternalDate
			if date.IsZero() {
				date = now
			}
			unix, tz := splitDate(date)
			if uid > math.MaxUint32 {
				return fmt.Errorf("mailbox %q: UIDs exhausted", m.Name)
			}
			_, modseq, err := wt.insertMessage(m, uint32(uid), bodyID, parseFlags(msg.Flags), unix, tz, sp.size)
			if err != nil {
				return err
			}
			out = append(out, Delivered{MailboxID: m.ID, UIDValidity: m.UIDValidity, UID: uint32(uid), Size: sp.size, ModSeq: modseq})
			uid++
		}
		return wt.setUIDNext(m, uid)
	})
	if err != nil {
		return nil, err
	}
	s.log.Debug("messages delivered", "account", accountID, "mailbox", mailbox, "count", len(out))
	return out, nil
}
