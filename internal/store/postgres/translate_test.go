package postgres

import "testing"

func TestTranslate(t *testing.T) {
	for _, c := range []struct{ in, out, returning string }{
		{`SELECT a FROM t WHERE x = ? AND y IN (?, ?)`, `SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)`, ""},
		// Literals, quoted identifiers and comments keep their question marks.
		{"SELECT '?', \"a?\" FROM t -- why?\nWHERE x = ?", "SELECT '?', \"a?\" FROM t -- why?\nWHERE x = $1", ""},
		{`SELECT 'it''s ?' WHERE x = ?`, `SELECT 'it''s ?' WHERE x = $1`, ""},
		// Scalar max/min become greatest/least; the aggregates stay.
		{`UPDATE mailboxes SET modseq = max(modseq, ?) WHERE id = ?`, `UPDATE mailboxes SET modseq = greatest(modseq, $1) WHERE id = $2`, ""},
		{`SELECT max(uid), MIN(x) FROM m`, `SELECT max(uid), MIN(x) FROM m`, ""},
		{`SELECT max((SELECT coalesce(max(a), 0) FROM t), (SELECT min(b) FROM u))`, `SELECT greatest((SELECT coalesce(max(a), 0) FROM t), (SELECT min(b) FROM u))`, ""},
		{`SELECT admin(a, b), x.max(a, b)`, `SELECT admin(a, b), x.max(a, b)`, ""},
		{`INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)`, `INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, ""},
		{`INSERT OR REPLACE INTO sort_keys (body_id, subject) VALUES (?, ?)`, `INSERT INTO sort_keys (body_id, subject) VALUES ($1, $2) ON CONFLICT (body_id) DO UPDATE SET subject = EXCLUDED.subject`, ""},
		// Generated keys come back through RETURNING (added by ExecContext).
		{`INSERT INTO messages (mailbox_id) VALUES (?)`, `INSERT INTO messages (mailbox_id) VALUES ($1)`, "id"},
		{`INSERT INTO changes (account_id) VALUES (?)`, `INSERT INTO changes (account_id) VALUES ($1)`, "modseq"},
		{`INSERT INTO messages (mailbox_id) VALUES (?) RETURNING uid`, `INSERT INTO messages (mailbox_id) VALUES ($1) RETURNING uid`, ""},
		{`SELECT account_id FROM changes NOT INDEXED WHERE modseq > ?`, `SELECT account_id FROM changes WHERE modseq > $1`, ""},
	} {
		got := translate(c.in)
		if got.query != c.out || got.returning != c.returning {
			t.Errorf("translate(%q)\n = %q, returning %q\nwant %q, returning %q", c.in, got.query, got.returning, c.out, c.returning)
		}
	}
}
