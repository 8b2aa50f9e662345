package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/store/sqlite"
)

// needFTS5 skips a test of the index in a build without the sqlite_fts5 tag (plain
// `go test`), except in CI, where `make test` builds with it and a skip would hide a bug.
func needFTS5(t *testing.T, s *Store) {
	t.Helper()
	if !s.SearchIndexed() {
		if os.Getenv("CI") != "" {
			t.Fatal("SQLite without FTS5 in CI: build with -tags sqlite_fts5 (make test does)")
		}
		t.Skip("SQLite built without FTS5 (build tag sqlite_fts5)")
	}
}

// waitIndexed waits until the background indexer has indexed every stored body.
func waitIndexed(t *testing.T, s *Store) {
	t.Helper()
	var hi int64
	if err := s.readers.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM bodies`).Scan(&hi); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.search.indexed.Load() < hi {
		if time.Now().After(deadline) {
			t.Fatalf("indexer did not catch up with body %d", hi)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func candidates(t *testing.T, s *Store, mailboxID int64, terms ...SearchTerm) ([]uint32, bool) {
	t.Helper()
	uids, ok, err := s.SearchCandidates(ctx, mailboxID, terms)
	if err != nil {
		t.Fatalf("SearchCandidates: %v", err)
	}
	return uids, ok
}

func indexRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM bodies_fts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSearchCandidates(t *testing.T) {
	s := newStore(t)
	needFTS5(t, s)
	a := newAccount(t, s, "a@example.com")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nX-Tag: Pineapple\r\n\r\nThe QUICK brown fox.\r\n", DeliverOptions{})
	deliver(t, s, a.ID, "Subject: other\r\n\r\nnothing here, \"quoted\" words\r\n", DeliverOptions{})
	d := deliver(t, s, a.ID, "Subject: third\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSch=F6ne Stra=DFe\r\n", DeliverOptions{})
	// Indexed or not yet, a new message is a candidate.
	if got, ok := candidates(t, s, in.ID, SearchTerm{SearchBody, "straße"}); !ok || !slices.Contains(got, d.UID) {
		t.Errorf("a message just delivered is not a candidate: %v (ok %v)", got, ok)
	}
	waitIndexed(t, s)

	for _, tt := range []struct {
		terms []SearchTerm
		want  []uint32
	}{
		{[]SearchTerm{{SearchText, "quick brown"}}, []uint32{1}},
		{[]SearchTerm{{SearchText, "grüße"}}, []uint32{1}},         // decoded RFC 2047 subject
		{[]SearchTerm{{SearchText, "subject: gr"}}, []uint32{1}},   // across key and value
		{[]SearchTerm{{SearchText, "schöne straße"}}, []uint32{3}}, // charset-decoded body
		{[]SearchTerm{{SearchBody, "pineapple"}}, []uint32{}},      // a header, not the body
		{[]SearchTerm{{SearchHeaders, "pineapple"}}, []uint32{1}},  //
		{[]SearchTerm{{SearchText, `"quoted"`}}, []uint32{2}},      // FTS5 quoting
		{[]SearchTerm{{SearchText, "subject"}, {SearchBody, "fox"}}, []uint32{1}},
	} {
		got, ok := candidates(t, s, in.ID, tt.terms...)
		if !ok || !slices.Equal(got, tt.want) {
			t.Errorf("%v: got %v (ok %v), want %v", tt.terms, got, ok, tt.want)
		}
	}
	// Terms of fewer than three characters cannot use the index.
	if _, ok := candidates(t, s, in.ID, SearchTerm{SearchText, "fo"}); ok {
		t.Error("a two-character term used the index")
	}

	// An expunge removes the body's row in the same transaction; a body shared with
	// another message stays until the last one goes.
	if n := indexRows(t, s); n != 3 {
		t.Fatalf("index rows = %d, want 3", n)
	}
	if _, err := s.Expunge(ctx, in.ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if n := indexRows(t, s); n != 2 {
		t.Errorf("after expunge: index rows = %d, want 2", n)
	}
	if got, _ := candidates(t, s, in.ID, SearchTerm{SearchText, "quick"}); len(got) != 0 {
		t.Errorf("expunged message still a candidate: %v", got)
	}
	if err := s.DeleteAccount(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := indexRows(t, s); n != 0 {
		t.Errorf("after deleting the account: index rows = %d, want 0", n)
	}
}

// A store filled by a build without FTS5 is indexed when a build with it opens the store,
// and so are messages delivered meanwhile by a build without FTS5, whose expunges leave
// rows in the index that match nothing.
func TestSearchIndexCatchesUp(t *testing.T) {
	probe := newStore(t)
	needFTS5(t, probe)
	defer func(b int) { indexBatch = b }(indexBatch)
	indexBatch = 3

	dir := t.TempDir()
	open := func(withFTS bool) *Store {
		fts5Unavailable = !withFTS
		defer func() { fts5Unavailable = false }()
		s, err := Open(dir, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	word := func(i int) string { return fmt.Sprintf("word%03dx", i) }

	s := open(false)
	a := newAccount(t, s, "a@example.com")
	for i := 1; i <= 10; i++ {
		deliver(t, s, a.ID, simpleMessage(word(i)), DeliverOptions{})
	}
	if _, ok := candidates(t, s, inbox(t, s, a.ID).ID, SearchTerm{SearchText, word(1)}); ok {
		t.Fatal("the index answered in a build without FTS5")
	}
	s.Close()

	only := func(s *Store, i int, want ...uint32) {
		t.Helper()
		got, ok := candidates(t, s, inbox(t, s, a.ID).ID, SearchTerm{SearchText, word(i)})
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s: candidates %v (ok %v), want %v", word(i), got, ok, want)
		}
	}
	s = open(true)
	for i := 1; i <= 10; i++ { // while indexing or after: never a miss
		if got, _ := candidates(t, s, inbox(t, s, a.ID).ID, SearchTerm{SearchText, word(i)}); !slices.Contains(got, uint32(i)) {
			t.Errorf("%s: candidates %v miss UID %d", word(i), got, i)
		}
	}
	waitIndexed(t, s)
	only(s, 4, 4)
	s.Close()

	s = open(false)
	deliver(t, s, a.ID, simpleMessage(word(11)), DeliverOptions{})
	if _, err := s.Expunge(ctx, inbox(t, s, a.ID).ID, []uint32{2}); err != nil {
		t.Fatal(err) // the delete trigger naming the FTS5 table is gone
	}
	s.Close()

	s = open(true)
	defer s.Close()
	waitIndexed(t, s)
	only(s, 11, 11)
	only(s, 2) // its row is still in the index, but no message refers to its body
	only(s, 10, 10)
	if _, err := s.Expunge(ctx, inbox(t, s, a.ID).ID, []uint32{10}); err != nil {
		t.Fatal(err)
	}
	if n := indexRows(t, s); n != 10 { // 11 indexed, 10 gone with its body by the trigger
		t.Errorf("index rows = %d, want 10", n)
	}
}

// The index's lookups take a term literally: LIKE's wildcards (PostgreSQL) and FTS5's
// syntax (SQLite) in a term match only themselves. Text that is not UTF-8, or holds NUL,
// is still found by the valid terms around it (PostgreSQL's text cannot hold either:
// pgSearchText), and a term that holds them falls back to reading the messages.
func TestSearchCandidatesTakeTermsLiterally(t *testing.T) {
	s := newStore(t)
	needFTS5(t, s)
	a := newAccount(t, s, "a@example.com")
	in := inbox(t, s, a.ID)
	deliver(t, s, a.ID, "Subject: one\r\n\r\n100% sure_thing\r\n", DeliverOptions{})
	deliver(t, s, a.ID, "Subject: two\r\n\r\n100x surexthing\r\n", DeliverOptions{})
	deliver(t, s, a.ID, "Subject: three\r\n\r\nabc\xff\x00def caf\xe9 ok AND\r\n", DeliverOptions{})
	waitIndexed(t, s)
	for _, tt := range []struct {
		term string
		want []uint32
	}{
		{"100% sure", []uint32{1}},
		{"sure_thing", []uint32{1}},
		{`e_t`, []uint32{1}},
		{"def caf", []uint32{3}},
		{"abc", []uint32{3}},
		{"ok and", []uint32{3}},
		{`0\% `, []uint32{}},
	} {
		got, ok := candidates(t, s, in.ID, SearchTerm{SearchBody, tt.term})
		if !ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v (ok %v), want %v", tt.term, got, ok, tt.want)
		}
	}
	if s.pg {
		if _, ok := candidates(t, s, in.ID, SearchTerm{SearchBody, "c\xff\x00d"}); ok {
			t.Error("a term with NUL and a byte that is not UTF-8 used PostgreSQL's index")
		}
	}
}

// An index of the earlier schema (with positions) is dropped at Open and built again:
// what it held, or claimed to hold, is not trusted.
func TestSearchIndexRebuiltWithoutPositions(t *testing.T) {
	sqliteOnly(t, "the FTS5 index")
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	needFTS5(t, s)
	a := newAccount(t, s, "a@example.com")
	for i := 1; i <= 3; i++ {
		deliver(t, s, a.ID, simpleMessage(fmt.Sprintf("word%03dx", i)), DeliverOptions{})
	}
	waitIndexed(t, s)
	s.Close()

	// The index as the earlier schema made it, emptied, with the mark saying all is in it.
	db, err := sqlite.Open(filepath.Join(dir, DBFile), sqlite.Writer, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TRIGGER bodies_fts_delete; DROP TABLE bodies_fts;
		CREATE VIRTUAL TABLE bodies_fts USING fts5(header, body, content='', contentless_delete=1, tokenize='trigram case_sensitive 1')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var createSQL string
	if err := s.readers.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'bodies_fts'`).Scan(&createSQL); err != nil || sqlite.SearchIndexOutdated(createSQL) {
		t.Fatalf("bodies_fts after Open: %q, %v", createSQL, err)
	}
	waitIndexed(t, s)
	if n := indexRows(t, s); n != 3 {
		t.Errorf("index rows after the rebuild = %d, want 3", n)
	}
	if got, ok := candidates(t, s, inbox(t, s, a.ID).ID, SearchTerm{SearchText, "word002x"}); !ok || !slices.Equal(got, []uint32{2}) {
		t.Errorf("candidates %v (ok %v), want [2]", got, ok)
	}
	// And the delete trigger is back.
	if _, err := s.Expunge(ctx, inbox(t, s, a.ID).ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if n := indexRows(t, s); n != 2 {
		t.Errorf("index rows after an expunge = %d, want 2", n)
	}
}

// setIndexTiming sets the indexer's quiet time and maximum lag for one test.
func setIndexTiming(t *testing.T, quiet, maxLag time.Duration) {
	t.Helper()
	q, l := indexQuiet, indexMaxLag
	indexQuiet, indexMaxLag = quiet, maxLag
	t.Cleanup(func() { indexQuiet, indexMaxLag = q, l })
}

// The indexer leaves a burst of deliveries alone while it lasts, and indexes it once the
// deliveries pause; SEARCH finds every message meanwhile.
func TestIndexerWaitsForTheDeliveriesToPause(t *testing.T) {
	setIndexTiming(t, 800*time.Millisecond, time.Hour)
	s := newStore(t)
	needFTS5(t, s)
	a := newAccount(t, s, "a@example.com")
	box := inbox(t, s, a.ID).ID
	deliver(t, s, a.ID, simpleMessage("firstword"), DeliverOptions{})
	waitIndexed(t, s)
	// The indexer may still take the burst's first body, if it comes before the indexer
	// has gone back to waiting; none after it.
	first := s.search.indexed.Load() + 1
	for i := 0; i < 60; i++ { // a burst longer than indexQuiet, with pauses far shorter
		deliver(t, s, a.ID, simpleMessage(fmt.Sprintf("burst%03dx", i)), DeliverOptions{})
		time.Sleep(25 * time.Millisecond)
		if got := s.search.indexed.Load(); got > first {
			t.Fatalf("delivery %d: the indexer indexed up to body %d during the burst", i, got)
		}
	}
	if got, _ := candidates(t, s, box, SearchTerm{SearchText, "burst007x"}); !slices.Contains(got, 9) {
		t.Errorf("before indexing: candidates %v miss UID 9", got)
	}
	waitIndexed(t, s)
	if got, ok := candidates(t, s, box, SearchTerm{SearchText, "burst007x"}); !ok || !slices.Equal(got, []uint32{9}) {
		t.Errorf("after indexing: candidates %v (ok %v), want [9]", got, ok)
	}
}

// Deliveries that never pause for indexQuiet are still indexed, indexMaxLag after the
// first one the indexer has not seen.
func TestIndexerIndexesUnderALoadThatNeverPauses(t *testing.T) {
	setIndexTiming(t, time.Hour, 300*time.Millisecond)
	s := newStore(t)
	needFTS5(t, s)
	a := newAccount(t, s, "a@example.com")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // commits every 20 ms, far more often than indexQuiet
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := s.Deliver(ctx, a.ID, strings.NewReader(simpleMessage(fmt.Sprintf("load%04dx", i))), DeliverOptions{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	deliver(t, s, a.ID, simpleMessage("steadyword"), DeliverOptions{})
	var hi int64
	if err := s.readers.QueryRowContext(ctx, `SELECT max(id) FROM bodies`).Scan(&hi); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.search.indexed.Load() < hi {
		if time.Now().After(deadline) {
			t.Fatalf("under a steady load, body %d was not indexed (indexed %d)", hi, s.search.indexed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
