package mailimport

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Dovecot's Maildir files, as Dovecot 2.x writes them (its maildir-uidlist.c and
// maildir-keywords.c) and Maildir++ folders (https://www.courier-mta.org/imap/README.maildirquota.html).

// UIDListFile is the name of Dovecot's UID list in a Maildir.
const UIDListFile = "dovecot-uidlist"

// KeywordsFile is the name of Dovecot's keyword list in a Maildir.
const KeywordsFile = "dovecot-keywords"

// UIDList is a parsed dovecot-uidlist: the mailbox's UIDVALIDITY and next UID, and the UID
// of each message by the base name of its file (the name before ":2,").
type UIDList struct {
	Version     int
	UIDValidity uint32
	NextUID     uint32
	UIDs        map[string]uint32
}

// ReadUIDList parses a dovecot-uidlist file. Version 3 (Dovecot 1.0 onwards):
//
//	3 V<uidvalidity> N<nextuid> G<guid>
//	<uid> [<key><value> ...] :<basename>
//
// Versions 1 and 2 (older): a header "<version> <uidvalidity> <nextuid>" and records
// "<uid> <basename>". Lines that do not parse are skipped; a header that does not is an error.
func ReadUIDList(path string) (*UIDList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mailimport: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("mailimport: %s: %w", path, err)
		}
		return nil, fmt.Errorf("mailimport: %s: empty", path)
	}
	l := &UIDList{UIDs: map[string]uint32{}}
	if err := l.parseHeader(sc.Text()); err != nil {
		return nil, fmt.Errorf("mailimport: %s: %w", path, err)
	}
	for sc.Scan() {
		uid, base, ok := l.parseRecord(sc.Text())
		if ok {
			l.UIDs[base] = uid
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mailimport: %s: %w", path, err)
	}
	return l, nil
}

func (l *UIDList) parseHeader(line string) error {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return errors.New("no header line")
	}
	v, err := strconv.Atoi(fields[0])
	if err != nil {
		return fmt.Errorf("header %q: no version", line)
	}
	l.Version = v
	switch v {
	case 1, 2:
		if len(fields) < 3 {
			return fmt.Errorf("header %q: want version, UIDVALIDITY and next UID", line)
		}
		uv, err1 := parseUint32(fields[1])
		next, err2 := parseUint32(fields[2])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("header %q: %w", line, err)
		}
		l.UIDValidity, l.NextUID = uv, next
	case 3:
		for _, f := range fields[1:] {
			var err error
			switch f[0] {
			case 'V':
				l.UIDValidity, err = parseUint32(f[1:])
			case 'N':
				l.NextUID, err = parseUint32(f[1:])
			}
			if err != nil {
				return fmt.Errorf("header %q: %w", line, err)
			}
		}
	default:
		return fmt.Errorf("header %q: unknown version %d", line, v)
	}
	if l.UIDValidity == 0 {
		return fmt.Errorf("header %q: no UIDVALIDITY", line)
	}
	return nil
}

// parseRecord parses one message line: version 3 keeps the base name after " :" (the
// extension fields before it, such as W<vsize> and S<size>, are not needed: sizes are
// measured again); versions 1 and 2 have it as the second field.
func (l *UIDList) parseRecord(line string) (uint32, string, bool) {
	uidText, rest, ok := strings.Cut(line, " ")
	if !ok {
		return 0, "", false
	}
	uid, err := parseUint32(uidText)
	if err != nil || uid == 0 {
		return 0, "", false
	}
	var base string
	if l.Version >= 3 {
		i := strings.Index(rest, ":")
		if i < 0 || (i > 0 && rest[i-1] != ' ') {
			return 0, "", false
		}
		base = rest[i+1:]
	} else {
		base = strings.TrimSpace(rest)
	}
	// A file name in the list may carry its flags too (older Dovecot): only the base counts.
	base, _, _ = strings.Cut(base, ":")
	if base == "" {
		return 0, "", false
	}
	return uid, base, true
}

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// Folder is one Maildir of a Maildir++ tree: INBOX (the root) or a folder below it.
type Folder struct {
	Name string // "INBOX", or the folder's name with "/" as the hierarchy delimiter
	Dir  string
}

// IsDovecotMaildir reports whether dir is a Maildir that Dovecot has used: it has a
// dovecot-uidlist, so its UIDs can be kept.
func IsDovecotMaildir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, UIDListFile))
	return err == nil && fi.Mode().IsRegular()
}

// MaildirFolders lists the folders of a Maildir++ tree rooted at root: the root itself as
// INBOX when it is a Maildir, and every subdirectory ".A.B" that is a Maildir as "A/B"
// (Maildir++ separates levels with "."; names are in IMAP's modified UTF-7, RFC 3501
// §5.1.3, and are decoded). Folders come sorted by name, parents before children.
func MaildirFolders(root string) ([]Folder, error) {
	var out []Folder
	if IsMaildir(root) {
		out = append(out, Folder{Name: "INBOX", Dir: root})
	}
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("mailimport: %w", err)
	}
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." || !de.IsDir() {
			continue
		}
		dir := filepath.Join(root, n)
		if !IsMaildir(dir) {
			continue
		}
		parts := strings.Split(n[1:], ".")
		if slices.Contains(parts, "") {
			return nil, fmt.Errorf("mailimport: %s: not a Maildir++ folder name", dir)
		}
		name, err := DecodeMailboxName(strings.Join(parts, "/"))
		if err != nil {
			return nil, fmt.Errorf("mailimport: %s: %w", dir, err)
		}
		if strings.EqualFold(name, "INBOX") {
			return nil, fmt.Errorf("mailimport: %s: a folder named INBOX beside the root's", dir)
		}
		out = append(out, Folder{Name: name, Dir: dir})
	}
	slices.SortFunc(out, func(a, b Folder) int {
		if a.Name == "INBOX" || b.Name == "INBOX" {
			return boolOrder(b.Name == "INBOX") - boolOrder(a.Name == "INBOX")
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DovecotMailbox is a Maildir read with its dovecot-uidlist: its messages in UID order,
// each with its UID, and the UIDVALIDITY and next UID to keep.
type DovecotMailbox struct {
	UIDValidity uint32
	NextUID     uint32 // above every UID of Messages
	Messages    []MaildirMessage
}

// ReadDovecotMaildir reads a Maildir that has a dovecot-uidlist. Messages the list knows
// keep their UIDs. Messages it does not know yet (delivered into new/ since Dovecot last
// synchronised the list) get the next UIDs, in delivery order, as Dovecot would give them.
func ReadDovecotMaildir(dir string) (*DovecotMailbox, error) {
	list, err := ReadUIDList(filepath.Join(dir, UIDListFile))
	if err != nil {
		return nil, err
	}
	msgs, err := ReadMaildir(dir)
	if err != nil {
		return nil, err
	}
	mb := &DovecotMailbox{UIDValidity: list.UIDValidity, NextUID: max(list.NextUID, 1)}
	var known, unknown []MaildirMessage
	seen := map[uint32]string{}
	for _, m := range msgs {
		base, _ := parseMaildirName(filepath.Base(m.Path), nil)
		uid, ok := list.UIDs[base]
		if !ok {
			unknown = append(unknown, m)
			continue
		}
		if other, dup := seen[uid]; dup {
			return nil, fmt.Errorf("mailimport: %s: UID %d is both %s and %s", dir, uid, other, m.Path)
		}
		seen[uid] = m.Path
		m.UID = uid
		known = append(known, m)
		mb.NextUID = max(mb.NextUID, uid+1)
	}
	slices.SortFunc(known, func(a, b MaildirMessage) int { return int(int64(a.UID) - int64(b.UID)) })
	for _, m := range unknown { // already in delivery order
		m.UID = mb.NextUID
		mb.NextUID++
		known = append(known, m)
	}
	mb.Messages = known
	return mb, nil
}
