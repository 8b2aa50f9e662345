package postgres

// SearchSchema is PostgreSQL's counterpart of the SQLite FTS5 index for SEARCH (internal/store/fts.go):
// a prefilter that may return too many candidates but never misses one, so SEARCH still
// confirms each candidate exactly.
//
// bodies_fts holds, per body, the two strings SEARCH compares with (the decoded header text
// and the lower-cased body text, as text: Go replaces what is not UTF-8, see store's
// pgSearchText), each with a pg_trgm GIN index, under which `LIKE '%term%'` looks up the
// trigrams of the term instead of reading every body; LIKE itself then checks the
// substring exactly. A body's row goes with the body (ON DELETE CASCADE). bodies_fts_state
// is the indexer's mark, as on SQLite: every body up to it is in bodies_fts.
//
// It is created at Open, outside the numbered schema (like SQLite's FTS5 tables), in a
// write transaction, so that nodes opening at once create it one at a time. pg_trgm is a
// contrib extension (in Debian's postgresql package) that the database owner may create
// (it is trusted since PostgreSQL 13); without it the store searches without a prefilter.
const SearchSchema = `
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS bodies_fts (
	body_id BIGINT PRIMARY KEY REFERENCES bodies(id) ON DELETE CASCADE,
	header  TEXT NOT NULL,
	body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bodies_fts_header ON bodies_fts USING gin (header gin_trgm_ops);
CREATE INDEX IF NOT EXISTS bodies_fts_body ON bodies_fts USING gin (body gin_trgm_ops);
CREATE TABLE IF NOT EXISTS bodies_fts_state (
	id      BIGINT PRIMARY KEY CHECK (id = 1),
	indexed BIGINT NOT NULL
);
INSERT INTO bodies_fts_state (id, indexed) VALUES (1, 0) ON CONFLICT DO NOTHING;
`
