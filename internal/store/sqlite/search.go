package sqlite

import "strings"

// SearchSchema is the full-text index for SEARCH (the store's fts.go, where its use is
// written): an FTS5 table with the trigram tokenizer, one row per body (rowid =
// bodies.id), the mark of how far the indexer has got, and the trigger that deletes a
// body's row with the body. It lives outside the numbered migrations: the store creates
// it at Open when FTS5 is compiled in (build tag sqlite_fts5); postgres.SearchSchema is
// its counterpart.
//
// The index keeps which column of which body holds each trigram, not where in it
// (detail=column): a body is a candidate when the column holds every trigram of a term,
// which SEARCH then confirms. With positions (FTS5's default, detail=full, which a phrase
// query needs) the index was four times the size and took two and a half times as long
// to build, and its indexing transactions held up the deliveries waiting for the writer.
const SearchSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS bodies_fts USING fts5(header, body,
	content='', contentless_delete=1, detail=column, tokenize='trigram case_sensitive 1');
CREATE TABLE IF NOT EXISTS bodies_fts_state (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	indexed INTEGER NOT NULL -- every body with an id up to this one is in bodies_fts
);
INSERT OR IGNORE INTO bodies_fts_state (id, indexed) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS bodies_fts_delete AFTER DELETE ON bodies BEGIN
	DELETE FROM bodies_fts WHERE rowid = OLD.id;
END;`

// SearchIndexOutdated reports whether a bodies_fts created by createSQL (its text in
// sqlite_master) is of an earlier SearchSchema: with positions (no detail=column), so
// that the store drops it (DropSearchIndex) and indexes every body again.
func SearchIndexOutdated(createSQL string) bool {
	return !strings.Contains(createSQL, "detail=column")
}

// DropSearchIndex removes the full-text index and its mark; SearchSchema then creates
// them afresh, with nothing indexed.
const DropSearchIndex = `
DROP TRIGGER IF EXISTS bodies_fts_delete;
DROP TABLE IF EXISTS bodies_fts;
DELETE FROM bodies_fts_state;`
