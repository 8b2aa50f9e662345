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
	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store/postgres"
	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// The full-text index for SEARCH: an SQLite FTS5 table with the trigram tokenizer over the
// text SEARCH matches, one row per body (rowid = bodies.id).
//
// Implementation notes:
//
//   - FTS5 is compiled into mattn/go-sqlite3 only with the build tag sqlite_fts5 (the
//     Makefile's default TAGS). Without it, Open logs once and SEARCH reads every message's
//     text, as it always can: the index only ever makes SEARCH faster, never different.
//   - The index lives outside the numbered migrations, created at Open when FTS5 is there
//     (internal/store/sqlite's SearchSchema):
//     bodies_fts (contentless, trigram, case-sensitive over text already lower-cased by Go's
//     strings.ToLower, exactly as SEARCH lower-cases it), bodies_fts_state (how far it has
//     got), and a trigger that deletes a body's row with the body, in the same transaction,
//     however the body goes (expunge, mailbox or account deletion).
//   - The two columns hold exactly the strings SEARCH compares with: header is
//     SearchHeaderText of the raw header, body the lower-cased decoded text. A term that is
//     a substring of one of them holds, if it has at least three characters, every
//     trigram of the term: the bodies whose column holds all of them (ftsTermQuery; the
//     index keeps no positions, detail=column) include every such body. So the index is
//     a prefilter that cannot miss; SEARCH still confirms each candidate exactly. Shorter
//     terms cannot use the index. An index of an earlier schema (with positions) is
//     dropped at Open and built again by the indexer, SEARCH reading the bodies not yet
//     indexed meanwhile.
//   - Bodies are indexed by a background indexer, in batches of up to indexBatch bodies in
//     ascending id order, woken by every commit (WatchAll: this process's and, through the
//     change watcher, other processes'). It starts once the commits pause for indexQuiet,
//     or indexMaxLag after the first one it has not indexed if they never pause: indexing
//     between the deliveries of a burst cost about as much CPU as the deliveries (each
//     FTS5 transaction writes a segment and merges), and on a small machine that CPU was
//     the deliveries'. bodies_fts_state.indexed is the highest body id
//     indexed: every body at or below it is in the index (body ids grow in commit order),
//     and SearchCandidates counts every body above it as a candidate. So the index can lag
//     but never be wrong, a delivery pays nothing for it (indexing one message at a time,
//     in its own transaction, doubled the time of an APPEND: each FTS5 transaction writes
//     a segment and merges), and a store filled before the index existed, or by a build
//     without FTS5, is caught up the same way.
//   - A build without FTS5 drops the delete trigger at Open (it names the FTS5 table, which
//     that build cannot load); the rows of bodies it then deletes stay in the index, which
//     is harmless: body ids are never reused and a candidate is a message referring to a
//     body. The next Open with FTS5 puts the trigger back.

// fts5Unavailable makes Open behave as a build without FTS5 (for tests).
var fts5Unavailable = false

// indexBatch is how many bodies one indexing transaction takes: indexing a 4 KB message
// takes about a millisecond, so a delivery waits for the writer some tens of milliseconds
// at most.
var indexBatch = 50

// indexQuiet is how long the commits must pause before the indexer starts on what they
// stored, and indexMaxLag how long it waits at most when they do not pause. Each FTS5
// transaction writes a new segment of the index (and merges some), so indexing a stream
// of deliveries one by one costs several times what indexing them in batches does, and
// indexing while they arrive takes the writer and the CPU they need. The bodies not
// indexed yet are SEARCH candidates meanwhile: SEARCH stays exact, only slower.
var (
	indexQuiet  = 500 * time.Millisecond
	indexMaxLag = 30 * time.Second
)

// searchIndex is the store's view of the index.
type searchIndex struct {
	on      bool         // FTS5 is compiled in and the index exists
	indexed atomic.Int64 // this process's knowledge of bodies_fts_state.indexed
	quit    chan struct{}
	done    chan struct{}
}

// openSearchIndex creates the index (or finds it), or, without FTS5, drops the trigger
// that names it. It runs at Open, after the migrations.
func (s *Store) openSearchIndex(ctx context.Context) error {
	if s.pg {
		return s.openPGSearchIndex(ctx)
	}
	var fts5 bool
	if err := s.writer.QueryRowContext(ctx, `SELECT sqlite_compileoption_used('ENABLE_FTS5')`).Scan(&fts5); err != nil {
		return wrapErr("open search index", err)
	}
	fts5 = fts5 && !fts5Unavailable
	err := s.write(ctx, "open search index", func(wt *writeTx) error {
		if !fts5 {
			_, err := wt.exec(`DROP TRIGGER IF EXISTS bodies_fts_delete`)
			return err
		}
		var createSQL string
		err := wt.queryRow(`SELECT sql FROM sqlite_master WHERE name = 'bodies_fts'`).Scan(&createSQL)
		switch {
		case err == nil && sqlite.SearchIndexOutdated(createSQL):
			s.log.Info("store: rebuilding the SEARCH index in the background (a smaller one, without positions)")
			if _, err := wt.exec(sqlite.DropSearchIndex); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		return s.createSearchIndex(wt, sqlite.SearchSchema)
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

// createSearchIndex creates the index's tables (schema, the engine's) if missing, and
// reads how far the indexer has got.
func (s *Store) createSearchIndex(wt *writeTx, schema string) error {
	if _, err := wt.exec(schema); err != nil {
		return err
	}
	var indexed int64
	if err := wt.queryRow(`SELECT indexed FROM bodies_fts_state`).Scan(&indexed); err != nil {
		return err
	}
	s.search.indexed.Store(indexed)
	return nil
}

// openPGSearchIndex is openSearchIndex on PostgreSQL: the pg_trgm tables
// (postgres.SearchSchema). Without pg_trgm, SEARCH reads every candidate message's text,
// and Open says so once.
func (s *Store) openPGSearchIndex(ctx context.Context) error {
	err := s.write(ctx, "open search index", func(wt *writeTx) error {
		return s.createSearchIndex(wt, postgres.SearchSchema)
	})
	if err != nil {
		if errors.Is(err, ErrTemporary) {
			return err
		}
		s.log.Warn("store: no pg_trgm index for SEARCH (CREATE EXTENSION pg_trgm as the database owner to have one); SEARCH reads every message's text", "err", err)
		return nil
	}
	s.search.on = true
	return nil
}

// pgSearchText is s as PostgreSQL text for bodies_fts: NUL, which text cannot hold, and
// every byte that is not UTF-8 become U+FFFD. A term of valid UTF-8 without NUL or U+FFFD
// (pgIndexableTerm) that is a substring of s is still one of the result: Go's decoding
// restarts after each invalid byte, and a valid rune never begins with a continuation
// byte, so no replacement swallows a byte of the term.
func pgSearchText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

// pgIndexableTerm reports whether bodies_fts can look term up (pgSearchText).
func pgIndexableTerm(term string) bool {
	return utf8.ValidString(term) && !strings.ContainsRune(term, 0) && !strings.ContainsRune(term, utf8.RuneError)
}

// startIndexer indexes, in the background, every body not indexed yet, after every commit.
func (s *Store) startIndexer() {
	s.search.quit = make(chan struct{})
	s.search.done = make(chan struct{})
	if !s.search.on {
		close(s.search.done)
		return
	}
	wake, cancel := s.hub.watch(anyAccount)
	go func() {
		defer close(s.search.done)
		defer cancel()
		retry := time.NewTimer(time.Hour)
		defer retry.Stop()
		for {
			if err := s.indexPending(); err != nil {
				s.log.Warn("store: indexing messages for SEARCH; will retry", "err", err)
				retry.Reset(5 * time.Second)
			}
			select {
			case <-s.search.quit:
				return
			case <-wake:
				if !waitQuiet(wake, s.search.quit) {
					return
				}
			case <-retry.C:
			}
		}
	}()
}

// waitQuiet waits, after a commit has woken the indexer, until no commit has come for
// indexQuiet, or for indexMaxLag in all, so that a burst of deliveries is indexed after
// it, together: fewer, larger transactions, none of them competing with the burst. It
// reports false if quit closed first.
func waitQuiet(wake <-chan struct{}, quit <-chan struct{}) bool {
	lag := time.NewTimer(indexMaxLag)
	defer lag.Stop()
	quiet := time.NewTimer(indexQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-quit:
			return false
		case <-lag.C:
			return true
		case <-quiet.C:
			return true
		case <-wake:
			quiet.Reset(indexQuiet) // Go 1.23 timers: Reset drops a pending expiry
		}
	}
}

func (s *Store) stopIndexer() {
	if s.search.quit != nil {
		close(s.search.quit)
		<-s.search.done
	}
}

// indexPending indexes the bodies above the indexed mark, a batch per transaction, until
// none is left or the store closes.
func (s *Store) indexPending() error {
	ctx := context.Background()
	for {
		select {
		case <-s.search.quit:
			return nil
		default:
		}
		var more bool // checked on a reader first: most commits store no body
		if err := s.readers.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM bodies
			WHERE id > (SELECT indexed FROM bodies_fts_state))`).Scan(&more); err != nil {
			return wrapErr("index messages for SEARCH", err)
		}
		if !more {
			return nil
		}
		if err := s.indexBatch(ctx); err != nil {
			return err
		}
	}
}

// indexBatch indexes up to indexBatch bodies above the indexed mark, in one transaction.
func (s *Store) indexBatch(ctx context.Context) error {
	var last int64
	err := s.write(ctx, "index messages for SEARCH", func(wt *writeTx) error {
		if err := wt.queryRow(`SELECT indexed FROM bodies_fts_state`).Scan(&last); err != nil {
			return err
		}
		rows, err := wt.tx.QueryContext(ctx, `SELECT id, header, body_text FROM bodies WHERE id > ? ORDER BY id LIMIT ?`, last, indexBatch)
		if err != nil {
			return err
		}
		type body struct {
			id           int64
			header, text string
		}
		var batch []body
		for rows.Next() {
			var b body
			if err := rows.Scan(&b.id, &b.header, &b.text); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, b := range batch {
			header, text := SearchHeaderText(SearchHeader(b.header)), strings.ToLower(b.text)
			var err error
			if s.pg {
				_, err = wt.exec(`INSERT INTO bodies_fts (body_id, header, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					b.id, pgSearchText(header), pgSearchText(text))
			} else {
				_, err = wt.exec(`INSERT INTO bodies_fts (rowid, header, body) VALUES (?, ?, ?)`, b.id, header, text)
			}
			if err != nil {
				return fmt.Errorf("index body %d: %w", b.id, err)
			}
			last = b.id
		}
		_, err = wt.exec(`UPDATE bodies_fts_state SET indexed = ? WHERE id = 1`, last)
		return err
	})
	if err == nil {
		s.search.indexed.Store(last) // once committed
	}
	return err
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
		if d, err := mailmsg.DecodeHeader(value); err == nil {
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
// those that do, which the caller confirms; messages not indexed yet are all candidates).
// ok is false when the index cannot help (built without FTS5, or no term of at least three
// characters): the caller then looks at every message.
func (s *Store) SearchCandidates(ctx context.Context, mailboxID int64, terms []SearchTerm) (uids []uint32, ok bool, err error) {
	if !s.search.on {
		return nil, false, nil
	}
	if s.pg {
		return s.pgSearchCandidates(ctx, mailboxID, terms)
	}
	var queries []string
	for _, t := range terms {
		if q := ftsTermQuery(t); q != "" {
			queries = append(queries, q)
		}
	}
	if len(queries) == 0 {
		return nil, false, nil
	}
	// The mark first: it only grows, so an older value errs on the side of candidates.
	var indexed int64
	if err := s.readers.QueryRowContext(ctx, `SELECT indexed FROM bodies_fts_state`).Scan(&indexed); err != nil {
		return nil, false, wrapErr("search index", err)
	}
	return s.candidateUIDs(ctx, `SELECT uid FROM messages WHERE mailbox_id = ?
		AND (body_id > ? OR body_id IN (SELECT rowid FROM bodies_fts WHERE bodies_fts MATCH ?))
		ORDER BY uid`, mailboxID, indexed, strings.Join(queries, " AND "))
}

// maxTermTrigrams is how many of a term's trigrams its query asks for: any subset still
// finds every body that holds the term, and a few already leave few candidates.
const maxTermTrigrams = 16

// ftsTermQuery is the FTS5 query of the bodies whose column (SearchTerm.Field) holds
// every trigram of the term (a superset of those holding the term), or "" for a term
// shorter than minIndexedTerm characters. Each trigram is an FTS5 string (double quotes
// doubled) and, to the trigram tokenizer, one token: the index has no positions
// (detail=column), so a phrase of several could not be asked for.
func ftsTermQuery(t SearchTerm) string {
	runes := []rune(t.Value)
	if len(runes) < minIndexedTerm {
		return ""
	}
	var grams []string
	seen := map[string]bool{}
	for i := 0; i+minIndexedTerm <= len(runes) && len(grams) < maxTermTrigrams; i++ {
		g := string(runes[i : i+minIndexedTerm])
		if !seen[g] {
			seen[g] = true
			grams = append(grams, `"`+strings.ReplaceAll(g, `"`, `""`)+`"`)
		}
	}
	q := "(" + strings.Join(grams, " AND ") + ")"
	switch t.Field {
	case SearchHeaders:
		q = "header : " + q
	case SearchBody:
		q = "body : " + q
	}
	return q
}

// pgSearchCandidates is SearchCandidates on PostgreSQL: each term of at least three
// characters becomes a LIKE on the columns it may occur in, which pg_trgm's indexes answer
// from the term's trigrams.
func (s *Store) pgSearchCandidates(ctx context.Context, mailboxID int64, terms []SearchTerm) ([]uint32, bool, error) {
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	var conds []string
	var args []any
	for _, t := range terms {
		if utf8.RuneCountInString(t.Value) < minIndexedTerm || !pgIndexableTerm(t.Value) {
			continue
		}
		pattern := "%" + like.Replace(t.Value) + "%"
		switch t.Field {
		case SearchHeaders:
			conds = append(conds, "header LIKE ?")
			args = append(args, pattern)
		case SearchBody:
			conds = append(conds, "body LIKE ?")
			args = append(args, pattern)
		default:
			conds = append(conds, "(header LIKE ? OR body LIKE ?)")
			args = append(args, pattern, pattern)
		}
	}
	if len(conds) == 0 {
		return nil, false, nil
	}
	var indexed int64
	if err := s.readers.QueryRowContext(ctx, `SELECT indexed FROM bodies_fts_state`).Scan(&indexed); err != nil {
		return nil, false, wrapErr("search index", err)
	}
	return s.candidateUIDs(ctx, `SELECT uid FROM messages WHERE mailbox_id = ?
		AND (body_id > ? OR body_id IN (SELECT body_id FROM bodies_fts WHERE `+strings.Join(conds, " AND ")+`))
		ORDER BY uid`, append([]any{mailboxID, indexed}, args...)...)
}

// candidateUIDs runs a SearchCandidates query, whose rows are UIDs in ascending order.
func (s *Store) candidateUIDs(ctx context.Context, query string, args ...any) (uids []uint32, ok bool, err error) {
	rows, err := s.readers.QueryContext(ctx, query, args...)
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
