package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

const accountColumns = `id, address, quota_bytes, quota_messages, protocols, disabled, created, used_bytes, message_count`

type rowScanner interface{ Scan(dest ...any) error }

// scanAccount scans accountColumns, then any extra columns into extra.
func scanAccount(row rowScanner, extra ...any) (Account, error) {
	var a Account
	var protocols string
	var created int64
	dest := append([]any{&a.ID, &a.Address, &a.QuotaBytes, &a.QuotaMessages, &protocols, &a.Disabled, &created, &a.UsedBytes, &a.Messages}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Account{}, err
	}
	if protocols != "" {
		a.Protocols = strings.Split(protocols, ",")
	}
	a.Created = time.Unix(created, 0)
	return a, nil
}

func normalizeAddress(address string) string {
	return strings.ToLower(strings.TrimSpace(address))
}

func normalizeProtocols(ps []string) string {
	var out []string
	for _, p := range ps {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// CreateAccount creates an account with INBOX and the configured special-use folders.
func (s *Store) CreateAccount(ctx context.Context, a NewAccount) (Account, error) {
	address := normalizeAddress(a.Address)
	if address == "" || strings.ContainsAny(address, " \t\r\n,") {
		return Account{}, fmt.Errorf("store: create account: invalid address %q", a.Address)
	}
	if a.QuotaBytes < 0 || a.QuotaMessages < 0 {
		return Account{}, fmt.Errorf("store: create account %s: negative quota", address)
	}
	// Hash before the transaction: argon2 is deliberately slow and must not hold the lock.
	hash, err := hashPassword(a.Password)
	if err != nil {
		return Account{}, fmt.Errorf("store: create account %s: %w", address, err)
	}
	var id int64
	err = s.write(ctx, "create account "+address, func(wt *writeTx) error {
		now := wt.now()
		var exists int
		err := wt.queryRow(`SELECT 1 FROM accounts WHERE address = ?`, address).Scan(&exists)
		if err == nil {
			return ErrAccountExists
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = wt.queryRow(`SELECT 1 FROM aliases WHERE address = ?`, address).Scan(&exists)
		if err == nil {
			return fmt.Errorf("%s is an alias: %w", address, ErrAliasExists)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := wt.exec(`INSERT INTO accounts (address, password_hash, quota_bytes, quota_messages, protocols, created) VALUES (?, ?, ?, ?, ?, ?)`,
			address, hash, a.QuotaBytes, a.QuotaMessages, normalizeProtocols(a.Protocols), now.Unix())
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		// The default folders are subscribed from the start, so that clients showing only
		// subscribed folders show them; mailboxes created later are not (RFC 3501 §6.3.6).
		names := append([]string{"INBOX"}, slices.Sorted(maps.Keys(s.folders))...)
		for _, name := range names {
			if _, err := wt.createMailbox(id, name, s.folders[name]); err != nil {
				return err
			}
			if _, err := wt.exec(`INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)`, id, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Account{}, err
	}
	s.log.Info("account created", "address", address, "id", id)
	return s.accountByID(ctx, id)
}

func (s *Store) accountByID(ctx context.Context, id int64) (Account, error) {
	a, err := scanAccount(s.readers.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("store: account %d: %w", id, ErrNoSuchAccount)
	}
	if err != nil {
		return Account{}, wrapErr("read account", err)
	}
	return a, nil
}

// SetPassword replaces an account's password hash.
func (s *Store) SetPassword(ctx context.Context, address, password string) error {
	address = normalizeAddress(address)
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("store: set password for %s: %w", address, err)
	}
	return s.write(ctx, "set password for "+address, func(wt *writeTx) error {
		res, err := wt.exec(`UPDATE accounts SET password_hash = ? WHERE address = ?`, hash, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoSuchAccount
		}
		return nil
	})
}

// SetAccountDisabled disables (or enables again) an account: a disabled account cannot
// log in (ErrAccountDisabled) but still receives mail.
func (s *Store) SetAccountDisabled(ctx context.Context, address string, disabled bool) error {
	address = normalizeAddress(address)
	return s.write(ctx, "disable account "+address, func(wt *writeTx) error {
		res, err := wt.exec(`UPDATE accounts SET disabled = ? WHERE address = ?`, disabled, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoSuchAccount
		}
		return nil
	})
}

// SetQuota changes an account's quota in bytes (0: unlimited).
func (s *Store) SetQuota(ctx context.Context, address string, quotaBytes int64) error {
	return s.setQuota(ctx, address, "quota_bytes", quotaBytes)
}

// SetQuotaMessages changes an account's quota in messages (0: unlimited).
func (s *Store) SetQuotaMessages(ctx context.Context, address string, quotaMessages int64) error {
	return s.setQuota(ctx, address, "quota_messages", quotaMessages)
}

// setQuota sets one quota column (a constant of the callers, never input).
func (s *Store) setQuota(ctx context.Context, address, column string, quota int64) error {
	address = normalizeAddress(address)
	if quota < 0 {
		return fmt.Errorf("store: set quota for %s: negative quota", address)
	}
	return s.write(ctx, "set quota for "+address, func(wt *writeTx) error {
		res, err := wt.exec(`UPDATE accounts SET `+column+` = ? WHERE address = ?`, quota, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoSuchAccount
		}
		return nil
	})
}

// SetProtocols restricts the protocols an account may log in with (ProtocolIMAP,
// ProtocolPOP3); none means all. Mail is delivered whatever they are.
func (s *Store) SetProtocols(ctx context.Context, address string, protocols []string) error {
	address = normalizeAddress(address)
	list := normalizeProtocols(protocols)
	for _, p := range strings.Split(list, ",") {
		if p != "" && p != ProtocolIMAP && p != ProtocolPOP3 {
			return fmt.Errorf("store: set protocols for %s: unknown protocol %q", address, p)
		}
	}
	return s.write(ctx, "set protocols for "+address, func(wt *writeTx) error {
		res, err := wt.exec(`UPDATE accounts SET protocols = ? WHERE address = ?`, list, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoSuchAccount
		}
		return nil
	})
}

// DeleteAccount removes an account with all its mailboxes and messages.
func (s *Store) DeleteAccount(ctx context.Context, address string) error {
	address = normalizeAddress(address)
	var id int64
	err := s.write(ctx, "delete account "+address, func(wt *writeTx) error {
		err := wt.queryRow(`SELECT id FROM accounts WHERE address = ?`, address).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoSuchAccount
		} else if err != nil {
			return err
		}
		// Mailboxes, messages and change-log rows go by cascade; the triggers on messages
		// delete the bodies no other account shares.
		if _, err := wt.exec(`DELETE FROM accounts WHERE id = ?`, id); err != nil {
			return err
		}
		wt.touched[id] = struct{}{}
		return nil
	})
	if err == nil {
		s.log.Info("account deleted", "address", address, "id", id)
	}
	return err
}

// Accounts lists every account, by address, with its usage.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY address`)
	if err != nil {
		return nil, wrapErr("list accounts", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrapErr("list accounts", err)
		}
		out = append(out, a)
	}
	return out, wrapErr("list accounts", rows.Err())
}

// LookupAccount finds an account by address (case-insensitive). An address whose full form
// is unknown falls back to its local part, so a bare-name account "demo" receives mail for
// demo@localhost.
func (s *Store) LookupAccount(ctx context.Context, address string) (Account, error) {
	a, _, err := s.lookup(ctx, address)
	return a, err
}

// lookup finds an account and its password hash, by exact address and then by local part.
func (s *Store) lookup(ctx context.Context, address string) (Account, string, error) {
	address = normalizeAddress(address)
	candidates := []string{address}
	if i := strings.LastIndexByte(address, '@'); i > 0 {
		candidates = append(candidates, address[:i])
	}
	for _, c := range candidates {
		var hash string
		row := s.readers.QueryRowContext(ctx, `SELECT `+accountColumns+`, password_hash FROM accounts WHERE address = ?`, c)
		a, err := scanAccount(row, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Account{}, "", wrapErr("look up account "+address, err)
		}
		return a, hash, nil
	}
	return Account{}, "", fmt.Errorf("store: look up account %q: %w", address, ErrNoSuchAccount)
}

// Authenticate checks a password. Unknown users and wrong passwords both give
// ErrAuthFailed, after comparable work; a disabled account gives ErrAccountDisabled.
func (s *Store) Authenticate(ctx context.Context, address, password string) (Account, error) {
	a, hash, err := s.lookup(ctx, address)
	if errors.Is(err, ErrNoSuchAccount) {
		if _, err := s.checkPassword(ctx, dummyHash(), password); err != nil && ctx.Err() != nil {
			return Account{}, err
		}
		return Account{}, fmt.Errorf("store: authenticate %q: %w", normalizeAddress(address), ErrAuthFailed)
	}
	if err != nil {
		return Account{}, err
	}
	// The login cache uses the wall clock, not s.now: a test clock must not keep an entry
	// alive (or expire it) artificially.
	ok := s.logins.verified(hash, password, time.Now())
	if !ok {
		ok, err = s.checkPassword(ctx, hash, password)
		if err != nil && ctx.Err() != nil {
			return Account{}, err
		}
		if err != nil {
			s.log.Warn("unusable password hash", "address", a.Address, "err", err)
		}
		if ok {
			s.logins.remember(hash, password, time.Now())
		}
	}
	if !ok {
		return Account{}, fmt.Errorf("store: authenticate %q: %w", a.Address, ErrAuthFailed)
	}
	// Only someone who knows the password learns that the account is disabled.
	if a.Disabled {
		return Account{}, fmt.Errorf("store: authenticate %q: %w", a.Address, ErrAccountDisabled)
	}
	return a, nil
}
