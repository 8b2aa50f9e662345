package mailimport

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IMAP system flags (RFC 3501 §2.3.2), as Maildir info letters map to them.
const (
	flagSeen     = `\Seen`
	flagAnswered = `\Answered`
	flagFlagged  = `\Flagged`
	flagDeleted  = `\Deleted`
	flagDraft    = `\Draft`
)

// maildirFlags maps the Maildir info letters (https://cr.yp.to/proto/maildir.html) to IMAP
// flags. P (passed) has no IMAP equivalent and is dropped.
var maildirFlags = map[byte]string{
	'S': flagSeen,
	'R': flagAnswered,
	'F': flagFlagged,
	'T': flagDeleted,
	'D': flagDraft,
}

// MaildirMessage is one message file of a Maildir.
type MaildirMessage struct {
	Path  string
	Flags []string  // IMAP flags and keywords from the info suffix
	Date  time.Time // the file's modification time
	UID   uint32    // from dovecot-uidlist (ReadDovecotMaildir); 0 otherwise
}

// IsMaildir reports whether dir looks like a Maildir: a directory with cur/ and new/.
func IsMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// ReadMaildir lists the messages of the Maildir dir (new/ and cur/) in delivery order: by
// the timestamp that leads each file name, then by name.
func ReadMaildir(dir string) ([]MaildirMessage, error) {
	if !IsMaildir(dir) {
		return nil, fmt.Errorf("mailimport: %s is not a Maildir (no cur/ and new/)", dir)
	}
	keywords := dovecotKeywords(filepath.Join(dir, "dovecot-keywords"))
	type entry struct {
		MaildirMessage
		stamp int64
		name  string
	}
	var entries []entry
	for _, sub := range []string{"new", "cur"} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("mailimport: %w", err)
		}
		for _, de := range des {
			name := de.Name()
			if strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
				continue
			}
			info, err := de.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // moved away meanwhile (a mail client is running)
				}
				return nil, fmt.Errorf("mailimport: %w", err)
			}
			base, flags := parseMaildirName(name, keywords)
			entries = append(entries, entry{
				MaildirMessage: MaildirMessage{Path: filepath.Join(dir, sub, name), Flags: flags, Date: info.ModTime()},
				stamp:          leadingNumber(base),
				name:           base,
			})
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].stamp != entries[j].stamp {
			return entries[i].stamp < entries[j].stamp
		}
		return entries[i].name < entries[j].name
	})
	out := make([]MaildirMessage, len(entries))
	for i, e := range entries {
		out[i] = e.MaildirMessage
	}
	return out, nil
}

// parseMaildirName splits "1705311001.M2P1.host:2,FS" into its unique part and its flags.
func parseMaildirName(name string, keywords map[byte]string) (string, []string) {
	base, info, ok := strings.Cut(name, ":2,")
	if !ok {
		base, _, _ = strings.Cut(name, ":")
		return base, nil
	}
	var flags []string
	seen := map[string]bool{}
	for i := 0; i < len(info); i++ {
		c := info[i]
		f := maildirFlags[c]
		if f == "" && c >= 'a' && c <= 'z' {
			f = keywords[c]
		}
		if f != "" && !seen[f] {
			seen[f] = true
			flags = append(flags, f)
		}
	}
	return base, flags
}

// leadingNumber is the delivery timestamp that starts a Maildir file name (0 if none).
func leadingNumber(name string) int64 {
	i := 0
	for i < len(name) && name[i] >= '0' && name[i] <= '9' {
		i++
	}
	n, _ := strconv.ParseInt(name[:i], 10, 64)
	return n
}

// dovecotKeywords reads Dovecot's dovecot-keywords file ("0 $Label1" per line): keyword
// letter 'a'+N -> keyword name. A missing or unreadable file means no keywords.
func dovecotKeywords(path string) map[byte]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[byte]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		idx, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		n, err := strconv.Atoi(idx)
		name = strings.TrimSpace(name)
		if !ok || err != nil || n < 0 || n >= 26 || !isKeyword(name) {
			continue // a keyword must be an IMAP atom (RFC 3501 flag-keyword)
		}
		m[byte('a'+n)] = name
	}
	return m
}

// isKeyword reports whether name can be an IMAP keyword: an RFC 3501 atom, that is no
// space, control or non-ASCII character, and none of ( ) { % * " \ ] (so no backslash,
// which system flags own).
func isKeyword(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
