package imap

import (
	"errors"
	"sort"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/internal/store"
)

var errTryCreate = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeTryCreate,
	Text: "No such mailbox",
}

// copyTarget resolves the messages and the destination of COPY and MOVE.
func (s *session) copyTarget(v *selected, numSet imap.NumSet, dest string) ([]uint32, store.Mailbox, error) {
	dst, err := s.st.MailboxByName(s.ctx, s.acct.ID, dest)
	if err != nil {
		if isNoSuchMailbox(err) {
			// RFC 3501 §6.4.7: TRYCREATE when the destination does not exist.
			return nil, store.Mailbox{}, errTryCreate
		}
		return nil, store.Mailbox{}, s.storeError(err, "finding the destination")
	}
	refs := v.resolve(numSet)
	uids := make([]uint32, len(refs))
	for i, r := range refs {
		uids[i] = r.uid
	}
	return uids, dst, nil
}

// copyData is the COPYUID response code (RFC 4315 §3): both sets list the UIDs in the
// same order, so the pairs are sorted by source UID (their copies are created in that
// order and so ascend too).
func copyData(dst store.Mailbox, pairs []store.UIDPair) *imap.CopyData {
	if len(pairs) == 0 {
		return nil
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Src < pairs[j].Src })
	data := &imap.CopyData{UIDValidity: dst.UIDValidity}
	for _, p := range pairs {
		data.SourceUIDs.AddNum(imap.UID(p.Src))
		data.DestUIDs.AddNum(imap.UID(p.Dst))
	}
	return data
}

// Copy answers COPY and UID COPY (RFC 3501 §6.4.7) with COPYUID (RFC 4315). Flags and
// INTERNALDATE go with the copies; the stored message is shared, not duplicated. A copy
// into the selected mailbox itself reaches the client as EXISTS through the poll.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	v, err := s.lockSelected()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	uids, dst, err := s.copyTarget(v, numSet, dest)
	if err != nil || len(uids) == 0 {
		return nil, err
	}
	if s.overLimit(len(uids)) {
		return nil, s.errCopyOverLimit(uids) // RFC 9738 §3.1: COPY is atomic
	}
	pairs, err := s.st.Copy(s.ctx, v.mbox.ID, uids, dst.ID)
	if err != nil {
		if errors.Is(err, store.ErrOverQuota) {
			s.srv.opts.Metrics.QuotaRejected(metrics.ViaCopy)
		}
		return nil, s.storeError(err, "copying")
	}
	return copyData(dst, pairs), nil
}

// Move answers MOVE and UID MOVE (RFC 6851): one store transaction copies and expunges;
// the client gets COPYUID first, then an EXPUNGE for each moved message (RFC 6851 §4.3).
// RFC 6851 §3.3 does not forbid the selected mailbox as the destination: as Dovecot does,
// the messages are copied to new UIDs and the originals expunged; the poll that follows
// announces the copies with EXISTS.
func (s *session) Move(w *moveWriter, numSet imap.NumSet, dest string) error {
	v, err := s.lockSelected()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if v.readOnly {
		return errReadOnly
	}
	uids, dst, err := s.copyTarget(v, numSet, dest)
	if err != nil || len(uids) == 0 {
		return err
	}
	uids = s.limitUIDs(uids) // RFC 9738 §3.1: the highest UIDs move
	pairs, err := s.st.Move(s.ctx, v.mbox.ID, uids, dst.ID)
	if err != nil {
		return s.storeError(err, "moving")
	}
	if data := copyData(dst, pairs); data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	moved := make(map[uint32]struct{}, len(pairs))
	for _, p := range pairs {
		if _, ok := v.index(p.Src); ok {
			moved[p.Src] = struct{}{}
		}
	}
	s.stats.expunged += len(moved)
	return s.removeExpunged(v, moved, w.WriteExpunge, w.WriteVanished)
}

func isNoSuchMailbox(err error) bool {
	return errors.Is(err, store.ErrNoSuchMailbox)
}

// --- the commands of this file (command.go has the table)

// COPY and UID COPY (RFC 3501 §6.4.7), with COPYUID (RFC 4315 §3).
func handleCopy(s *session, cmd *command) error {
	a := cmd.args.(*copyArgs)
	data, err := s.Copy(a.nums, a.mailbox)
	if err != nil {
		return err
	}
	if data != nil {
		s.ok(imap.ResponseCode(copyUIDCode(data)), cmd.name+" completed")
	}
	return nil
}

// MOVE and UID MOVE (RFC 6851).
func handleMove(s *session, cmd *command) error {
	a := cmd.args.(*copyArgs)
	return s.Move(&moveWriter{w: s.out}, a.nums, a.mailbox)
}
