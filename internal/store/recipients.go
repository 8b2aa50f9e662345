package store

// Recipients: aliases and the resolution of a delivery address (LMTP RCPT, `letterbox
// deliver --to`) to an account and, for a subaddress (user+detail@domain), a folder.
//
// Implementation notes:
//
//   - An alias is an address that delivers to one account (aliases table, schema version
//     2). It is not a login name: Authenticate and LookupAccount never consult it. An alias
//     never equals an account address: CreateAccount and AddAlias check the other table in
//     the same write transaction that inserts, so the two cannot race into a clash. An
//     alias goes with its account (ON DELETE CASCADE).
//   - ResolveRecipient tries, in order: the address as an account, as an alias, as a
//     bare-name account (LookupAccount's fallback: "demo" takes demo@any.domain), then (when
//     a detail delimiter is given and the local part holds one) the same for the address
//     without its detail. The
//     detail names a folder of the account it resolved to, matched exactly and then
//     case-insensitively against the folders that exist; a folder is never created for it
//     (subaddresses are chosen by senders, so spam could otherwise create folders at will).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors about aliases (see also the errors in api.go).
var (
	ErrAliasExists  = errors.New("store: alias already exists")
	ErrNoSuchAlias  = errors.New("store: no such alias")
	errAliasAccount = errors.New("an account has this address")
)

// Alias is an address that delivers to another account.
type Alias struct {
	Address   string // normalised: lower case
	AccountID int64
	Account   string // the account's address
}

// AddAlias makes alias deliver to the account whose address is account (exactly).
// Errors: ErrNoSuchAccount (no such account), ErrAliasExists (the alias exists already),
// ErrAccountExists (an account has the alias's address).
func (s *Store) AddAlias(ctx context.Context, alias, account string) error {
	alias, account = normalizeAddress(alias), normalizeAddress(account)
	if alias == "" || strings.ContainsAny(alias, " \t\r\n,") {
		return fmt.Errorf("store: add alias: invalid address %q", alias)
	}
	err := s.write(ctx, "add alias "+alias, func(wt *writeTx) error {
		var one int
		err := wt.queryRow(`SELECT 1 FROM accounts WHERE address = ?`, alias).Scan(&one)
		if err == nil {
			return fmt.Errorf("%w: %w", errAliasAccount, ErrAccountExists)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = wt.queryRow(`SELECT 1 FROM aliases WHERE address = ?`, alias).Scan(&one)
		if err == nil {
			return ErrAliasExists
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var id int64
		if err := wt.queryRow(`SELECT id FROM accounts WHERE address = ?`, account).Scan(&id); err != nil {
			return fmt.Errorf("account %q: %w", account, noRows(err, ErrNoSuchAccount))
		}
		_, err = wt.exec(`INSERT INTO aliases (address, account_id) VALUES (?, ?)`, alias, id)
		return err
	})
	if err == nil {
		s.log.Info("alias added", "alias", alias, "account", account)
	}
	return err
}

// DeleteAlias removes an alias. Errors: ErrNoSuchAlias.
func (s *Store) DeleteAlias(ctx context.Context, alias string) error {
	alias = normalizeAddress(alias)
	err := s.write(ctx, "delete alias "+alias, func(wt *writeTx) error {
		res, err := wt.exec(`DELETE FROM aliases WHERE address = ?`, alias)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoSuchAlias
		}
		return nil
	})
	if err == nil {
		s.log.Info("alias deleted", "alias", alias)
	}
	return err
}

// Aliases lists every alias, by address.
func (s *Store) Aliases(ctx context.Context) ([]Alias, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT l.address, l.account_id, a.address
		FROM aliases l JOIN accounts a ON a.id = l.account_id ORDER BY l.address`)
	if err != nil {
		return nil, wrapErr("list aliases", err)
	}
	defer rows.Close()
	var out []Alias
	for rows.Next() {
		var a Alias
		if err := rows.Scan(&a.Address, &a.AccountID, &a.Account); err != nil {
			return nil, wrapErr("list aliases", err)
		}
		out = append(out, a)
	}
	return out, wrapErr("list aliases", rows.Err())
}

// ResolveRecipient finds the account a message for address is delivered to, and the
// folder its detail names. Each character of detailDelimiter separates a local part from
// its detail (as Postfix's recipient_delimiter: "+" makes user+lists@example.com
// user@example.com with detail "lists"); "" means addresses have no detail.
//
// The order: the address as an account, as an alias, as a bare-name account (its local
// part, as LookupAccount falls back), then the address without its detail the same three
// ways. mailbox is the name of the resolved account's existing folder matching the detail
// (exactly, else case-insensitively), or "" (INBOX) when there is no detail or no such
// folder.
// Errors: ErrNoSuchAccount when nothing matches, ErrTemporary.
func (s *Store) ResolveRecipient(ctx context.Context, address, detailDelimiter string) (acct Account, mailbox string, err error) {
	address = strings.TrimSpace(address) // the detail keeps its case, to match a folder
	acct, err = s.resolveAddress(ctx, address)
	if err == nil || !errors.Is(err, ErrNoSuchAccount) {
		return acct, "", err
	}
	base, detail, ok := splitDetail(address, detailDelimiter)
	if !ok {
		return Account{}, "", err
	}
	acct, err = s.resolveAddress(ctx, base)
	if err != nil {
		if errors.Is(err, ErrNoSuchAccount) {
			return Account{}, "", fmt.Errorf("store: resolve recipient %q: %w", normalizeAddress(address), ErrNoSuchAccount)
		}
		return Account{}, "", err
	}
	mailbox, err = s.detailFolder(ctx, acct.ID, detail)
	if err != nil {
		return Account{}, "", err
	}
	return acct, mailbox, nil
}

// resolveAddress finds the account of address: an account with that address, else the
// account of an alias with that address, else a bare-name account named by its local part
// (as LookupAccount falls back): an alias someone made beats the implicit fallback.
func (s *Store) resolveAddress(ctx context.Context, address string) (Account, error) {
	address = normalizeAddress(address)
	queries := []struct{ query, arg string }{
		{`SELECT ` + accountColumns + ` FROM accounts WHERE address = ?`, address},
		{`SELECT ` + prefixColumns("a.", accountColumns) + ` FROM aliases l JOIN accounts a ON a.id = l.account_id WHERE l.address = ?`, address},
	}
	if i := strings.LastIndexByte(address, '@'); i > 0 {
		queries = append(queries, struct{ query, arg string }{`SELECT ` + accountColumns + ` FROM accounts WHERE address = ?`, address[:i]})
	}
	for _, q := range queries {
		acct, err := scanAccount(s.readers.QueryRowContext(ctx, q.query, q.arg))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Account{}, wrapErr("resolve recipient "+address, err)
		}
		return acct, nil
	}
	return Account{}, fmt.Errorf("store: resolve recipient %q: %w", address, ErrNoSuchAccount)
}

// splitDetail splits "user+detail@domain" into "user@domain" and "detail" at the first
// character of the local part that is in delimiters. ok is false when there is no detail
// to strip (no delimiter, none in the local part, or nothing before it).
func splitDetail(address, delimiters string) (base, detail string, ok bool) {
	if delimiters == "" {
		return "", "", false
	}
	local, domain := address, "" // domain keeps its "@"
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		local, domain = address[:i], address[i:]
	}
	i := strings.IndexAny(local, delimiters)
	if i <= 0 {
		return "", "", false
	}
	return local[:i] + domain, local[i+1:], true
}

// detailFolder is the account's folder a detail names: an exact match, else the first
// (by name) that matches case-insensitively, else "" (INBOX).
func (s *Store) detailFolder(ctx context.Context, accountID int64, detail string) (string, error) {
	if detail == "" {
		return "", nil
	}
	boxes, err := s.Mailboxes(ctx, accountID)
	if err != nil {
		return "", err
	}
	if n, err := normalizeMailboxName(detail); err == nil {
		if i := slices.IndexFunc(boxes, func(m Mailbox) bool { return m.Name == n }); i >= 0 {
			return boxes[i].Name, nil
		}
	}
	for _, m := range boxes { // Mailboxes lists them by name
		if strings.EqualFold(m.Name, detail) {
			return m.Name, nil
		}
	}
	return "", nil
}
