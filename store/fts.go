package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// The full-text index for SEARCH: an SQLite FTS5 table with the trigram tokenizer over the
// text SEARCH matches, one row per body (rowid = bodies.id).
//
// Implementation notes:
//
//   - FTS5 is compiled into mattn/go-sqlite3 only with the build tag sqlite_fts5 (the
//     Makefile's default TAGS). Without it, Open logs once and SEARCH reads every message's
//     text, as it always can: the index only ever makes SEARCH faster, never different.
//   - The index lives outside the numbered migrations, created at Open when FTS5 is there:
//     bodies_fts (contentless, trigram, case-sensitive over text already lower-cased by Go's
//     strings.ToLower, exactly as SEARCH lower-cases it), bodies_fts_state (the backfill's
//     progress), and a trigger that deletes a body's row with the body, in the same
//     transaction, however the body goes (expunge, mailbox or account deletion).
//   - The two columns hold exactly the strings SEARCH compares with: header is
//     SearchHeaderText of the raw header, body the lower-cased decoded text. A term that is
//     a substring of one of them contains, if it has at least three characters, trigrams
//     that are consecutive in the index: an FTS5 phrase of the term finds every such body.
//     So the index is a prefilter that cannot miss; SEARCH still confirms each candidate
//     exactly. Shorter terms cannot use the index.
//   - A delivery indexes its new body in its own transaction (indexBody), so the index
//     cannot drift from the bodies. Bodies stored before the index existed are indexed by a
//     background backfill in short batches, newest first; bodies_fts_state.pending is the
//     highest body id that may not be indexed yet (0: none), and SearchCandidates counts
//     every body up to it as a candidate, so a search during the backfill is still right.
//   - A binary without FTS5 opening an indexed store cannot keep the index: it drops the
//     delete trigger (which names the FTS5 table it cannot load) and marks the index stale;
//     SEARCH then scans, and the next Open with FTS5 rebuilds the index. Running binaries
//     with and without FTS5 on one data directory at the same time is not supported.

// fts5Unavailable makes Open behave as a build without FTS5 (for tests).
var fts5Unavailable = false

// backfillBatch is how many bodies one backfill transaction indexes: indexing a 4 KB
// message takes about a millisecond, so a delivery waits for the writer some tens of
// milliseconds at most.
var backfillBatch = 50

// searchIndex is the store's view of the index.
type searchIndex struct {
	on      bool         // FTS5 is compiled in and the index exists
	pending atomic.Int64 // this process's knowledge of bodies_fts_state.pending
	quit    chan struct{}
	done    chan struct{}
}

const ftsSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS bodies_fts USING fts5(header, body,
	content='', contentless_delete=1, tokenize='trigram case_sensitive 1');
CREATE TRIGGER IF NOT EXISTS bodies_fts_delete AFTER DELETE ON bodies BEGIN
	DELETE FROM bodies_fts WHERE rowid = OLD.id;
END;`

// openSearchIndex creates the index (or finds it), or, without FTS5, marks an existing one
// stale. It runs at Open, after the migrations.
func (s *Store) openSearchIndex(ctx context.Context) error {
	var fts5 bool
	if err := s.w.QueryRowContext(ctx, `SELECT sqlite_compileoption_used('ENABLE_FTS5')`).Scan(&fts5); err != nil {
		return wrapErr("open search index", err)
	}
	fts5 = fts5 && !fts5Unavailable
	err := s.write(ctx, "open search index", func(wt *writeTx) error {
		if _, err := wt.exec(`CREATE TABLE IF NOT EXISTS bodies_fts_state (
			id      INTEGER PRIMARY KEY CHECK (id = 1),
			pending INTEGER NOT NULL, -- highest body id that may not be indexed (0: none)
			stale   INTEGER NOT NULL  -- 1: written by a build without FTS5; rebuild
		)`); err != nil {
			return err
		}
		if !fts5 {
			_, err := wt.exec(`DROP TRIGGER IF EXISTS bodies_fts_delete`)
			if err == nil {
				_, err = wt.exec(`UPDATE bodies_fts_state SET stale = 1`)
			}
			return err
		}
		var pending int64
		var stale bool
		err := wt.queryRow(`SELECT pending, stale FROM bodies_fts_state`).Scan(&pending, &stale)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if stale {
			s.log.Info("store: search index was left behind by a build without FTS5; rebuilding it")
			if _, err := wt.exec(`DROP TABLE IF EXISTS bodies_fts`); err != nil {
				return err
			}
		}
		if stale || errors.Is(err, sql.ErrNoRows) {
			if err := wt.queryRow(`SELECT coalesce(max(id), 0) FROM bodies`).Scan(&pending); err != nil {
				return err
			}
			if _, err := wt.exec(`INSERT OR REPLACE INTO bodies_fts_state (id, pending, stale) VALUES (1, ?, 0)`, pending); err != nil {
				return err
			}
		}
		if _, err := wt.exec(ftsSchema); err != nil {
			return err
		}
		s.search.pending.Store(pending)
		return nil
	})
	if err != nil {
		return err
	}
	s.search.on = fts5
	if !fts5 {
		s.log.Info("store: SQLite built without FTS5 (build tag sqlite_fts5); SEARCH reads every message's text")
	}
	return nil
}

// startBackfill indexes, in the background, the bodies stored before the index existed.
func (s *Store) startBackfill() {
	s.search.quit = make(chan struct{})
	s.search.done = make(chan struct{})
	go func() {
		defer close(s.search.done)
		if !s.search.on || s.search.pending.Load() == 0 {
			return
		}
		start := time.Now()
		s.log.Info("store: indexing stored messages for SEARCH", "bodies up to id", s.search.pending.Load())
		for s.search.pending.Load() > 0 {
			select {
			case <-s.search.quit:
				return
			default:
			}
			if err := s.backfillOnce(context.Background()); err != nil {
				s.log.Warn("store: indexing stored messages for SEARCH; will retry", "err", err)
				select {
				case <-s.search.quit:
					return
				case <-time.After(5 * time.Second):
				}
			}
		}
		s.log.Info("store: stored messages indexed for SEARCH", "took", time.Since(start).Round(time.Millisecond))
	}()
}

func (s *Store) stopBackfill() {
	if s.search.quit != nil {
		close(s.search.quit)
		<-s.search.done
	}
}

// backfillOnce indexes one batch of the bodies at or below pending, newest first.
func (s *Store) backfillOnce(ctx context.Context) error {
	var next int64
	err := s.write(ctx, "index stored messages", func(wt *writeTx) error {
		var pending int64
		if err := wt.queryRow(`SELECT pending FROM bodies_fts_state`).Scan(&pending); err != nil {
			return err
		}
		rows, err := wt.tx.QueryContext(ctx, `SELECT id FROM bodies WHERE id <= ? ORDER BY id DESC LIMIT ?`, pending, backfillBatch)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := wt.indexBody(id); err != nil {
				return err
			}
		}
		if len(ids) == backfillBatch {
			next = ids[len(ids)-1] - 1
		}
		_, err = wt.exec(`UPDATE bodies_fts_state SET pending = ? WHERE id = 1`, next)
		return err
	})
	if err == nil {
		s.search.pending.Store(next) // once committed
	}
	return err
}

// indexBody adds a body's searchable text to the index, in the caller's transaction, unless
// it is there already (a body shared by several deliveries). Without FTS5 it does nothing.
func (wt *writeTx) indexBody(bodyID int64) error {
	if !wt.s.search.on {
		return nil
	}
	var n int
	if err := wt.queryRow(`SELECT count(*) FROM bodies_fts WHERE rowid = ?`, bodyID).Scan(&n); err != nil {
		return fmt.Errorf("index body %d: %w", bodyID, err)
	}
	if n > 0 {
		return nil
	}
	var header, text string
	if err := wt.queryRow(`SELECT header, body_text FROM bodies WHERE id = ?`, bodyID).Scan(&header, &text); err != nil {
		return fmt.Errorf("index body %d: %w", bodyID, err)
	}
	_, err := wt.exec(`INSERT INTO bodies_fts (rowid, header, body) VALUES (?, ?, ?)`,
		bodyID, SearchHeaderText(SearchHeader(header)), strings.ToLower(text))
	if err != nil {
		return fmt.Errorf("index body %d: %w", bodyID, err)
	}
	return nil
}

// HeaderField is one field of a message's top-level header as SEARCH sees it: the key as
// written, the value with its RFC 2047 encoded words decoded and lower-cased.
type HeaderField struct{ Key, Value string }

// SearchHeader decodes a raw top-level header (SearchData.Header) for SEARCH; a header that
// cannot be read at all has no fields.
func SearchHeader(raw string) []HeaderField {
	if !strings.HasSuffix(raw, "\r\n\r\n") {
		raw = strings.TrimRight(raw, "\r\n") + "\r\n\r\n"
	}
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return nil
	}
	var out []HeaderField
	fields := h.Fields()
	for fields.Next() {
		value := fields.Value()
		if d, err := wordDecoder.DecodeHeader(value); err == nil {
			value = d
		}
		out = append(out, HeaderField{Key: fields.Key(), Value: strings.ToLower(value)})
	}
	return out
}

// SearchHeaderText is the text SEARCH TEXT matches in a header: "key: value\n" per field,
// lower case.
func SearchHeaderText(fields []HeaderField) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(strings.ToLower(f.Key))
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// Where a SearchTerm must occur.
type SearchField int

const (
	SearchText    SearchField = iota // the header text or the body text (SEARCH TEXT)
	SearchHeaders                    // the header text (SEARCH HEADER)
	SearchBody                       // the body text (SEARCH BODY)
)

// SearchTerm is a string a message must contain, lower case (strings.ToLower).
type SearchTerm struct {
	Field SearchField
	Value string
}

// minIndexedTerm is the shortest term the trigram index can look up, in characters.
const minIndexedTerm = 3

// SearchCandidates narrows a search of a mailbox with the full-text index: it returns, in
// ascending order, the UIDs of the messages that may contain every term (a superset of
// those that do, which the caller confirms). ok is false when the index cannot help (built
// without FTS5, left stale, or no term of at least three characters): the caller then
// looks at every message.
func (s *Store) SearchCandidates(ctx context.Context, mailboxID int64, terms []SearchTerm) (uids []uint32, ok bool, err error) {
	if !s.search.on {
		return nil, false, nil
	}
	var phrases []string
	for _, t := range terms {
		if utf8.RuneCountInString(t.Value) < minIndexedTerm {
			continue
		}
		// An FTS5 string: double quotes doubled. The trigram tokenizer makes it a phrase of
		// consecutive trigrams, that is, a substring.
		p := `"` + strings.ReplaceAll(t.Value, `"`, `""`) + `"`
		switch t.Field {
		case SearchHeaders:
			p = "header : " + p
		case SearchBody:
			p = "body : " + p
		}
		phrases = append(phrases, p)
	}
	if len(phrases) == 0 {
		return nil, false, nil
	}
	// The state first: pending only falls, so an older value errs on the side of more
	// candidates.
	var pending int64
	var stale bool
	if err := s.r.QueryRowContext(ctx, `SELECT pending, stale FROM bodies_fts_state`).Scan(&pending, &stale); err != nil {
		return nil, false, wrapErr("search index", err)
	}
	if stale {
		return nil, false, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT uid FROM messages WHERE mailbox_id = ?
		AND (body_id <= ? OR body_id IN (SELECT rowid FROM bodies_fts WHERE bodies_fts MATCH ?))
		ORDER BY uid`, mailboxID, pending, strings.Join(phrases, " AND "))
	if err != nil {
		return nil, false, wrapErr("search index", err)
	}
	defer rows.Close()
	uids = []uint32{}
	for rows.Next() {
		var uid uint32
		if err := rows.Scan(&uid); err != nil {
			return nil, false, wrapErr("search index", err)
		}
		uids = append(uids, uid)
	}
	if err := rows.Err(); err != nil {
		return nil, false, wrapErr("search index", err)
	}
	return uids, true, nil
}

// SearchIndexed reports whether SEARCH can use the full-text index (FTS5 compiled in).
func (s *Store) SearchIndexed() bool { return s.search.on }
