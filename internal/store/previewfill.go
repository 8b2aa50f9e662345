package store

// Previews of bodies stored before the store kept them (the preview itself is
// internal/mailmsg's, preview.go).

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// PreviewMax is the most characters (Unicode code points) a preview has (RFC 8970 §3.1).
const PreviewMax = mailmsg.PreviewMax

// fillPreviews computes the previews of out[i] for i in missing, messages whose bodies
// were stored without one, and keeps them.
func (s *Store) fillPreviews(ctx context.Context, out []Metadata, missing []int) error {
	computed := map[int64]string{} // body id -> preview
	for _, i := range missing {
		md := &out[i]
		p, ok := computed[md.BodyID]
		if !ok {
			var err error
			if p, err = s.computePreview(ctx, md.BodyID, md.Size); err != nil {
				return err
			}
			computed[md.BodyID] = p
		}
		md.Preview = p
	}
	// Keeping them is only a saving: a failure is logged, and the next reader computes
	// them again.
	err := s.write(ctx, "keep previews", func(wt *writeTx) error {
		for id, p := range computed {
			if _, err := wt.exec(`UPDATE bodies SET preview = ? WHERE id = ? AND preview IS NULL`, p, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("store: keeping computed previews", "err", err)
	}
	return nil
}

// computePreview parses a stored body again to make its preview. A body that is gone
// (its last message expunged meanwhile) has none.
func (s *Store) computePreview(ctx context.Context, bodyID, size int64) (string, error) {
	b := newBody(s, bodyID, size, nil)
	defer b.Close()
	p, _, err := mailmsg.Parse(io.NewSectionReader(b, 0, size), mailmsg.Limits{}, true)
	if err != nil {
		if errors.Is(err, ErrNoSuchMessage) || errors.Is(err, ErrNotMessage) {
			return "", nil
		}
		return "", fmt.Errorf("store: preview of body %d: %w", bodyID, err)
	}
	if err := ctx.Err(); err != nil {
		return "", wrapErr("preview", err)
	}
	return p.Preview(b), nil
}
