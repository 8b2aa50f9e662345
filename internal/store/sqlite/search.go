package sqlite

// SearchSchema is the full-text index for SEARCH (the store's fts.go, where its use is
// written): an FTS5 table with the trigram tokenizer, one row per body (rowid =
// bodies.id), the mark of how far the indexer has got, and the trigger that deletes a
// body's row with the body. It lives outside the numbered migrations: the store creates
// it at Open when FTS5 is compiled in (build tag sqlite_fts5); postgres.SearchSchema is
// its counterpart.
const SearchSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS bodies_fts USING fts5(header, body,
	content='', contentless_delete=1, tokenize='trigram case_sensitive 1');
CREATE TABLE IF NOT EXISTS bodies_fts_state (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	indexed INTEGER NOT NULL -- every body with an id up to this one is in bodies_fts
);
INSERT OR IGNORE INTO bodies_fts_state (id, indexed) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS bodies_fts_delete AFTER DELETE ON bodies BEGIN
	DELETE FROM bodies_fts WHERE rowid = OLD.id;
END;`
