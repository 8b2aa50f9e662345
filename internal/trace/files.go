package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Info describes one transcript file.
type Info struct {
	Name     string    `json:"name"`
	Protocol string    `json:"protocol"`
	Session  string    `json:"session"`
	Remote   string    `json:"remote"`
	User     string    `json:"user"` // "" if the session never logged in (or not within headScan)
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"` // zero while the session is open (or if it was cut off)
	Size     int64     `json:"size"`
}

// nameRE is the form of every transcript name; nothing else is ever opened.
var nameRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[a-z0-9]+-[0-9]+(-[0-9]+)?\.log$`)

// ValidName reports whether name is a transcript file name (and so a plain name in the
// directory, never a path).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// ErrNotFound is returned by Open for a name that is not a transcript in the directory.
var ErrNotFound = errors.New("trace: no such trace")

// headScan is how much of a file List reads to find the header and the user.
const headScan = 64 << 10

// List describes the transcripts in dir, newest first. Files that are not transcripts
// are skipped.
func List(dir string) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if !e.Type().IsRegular() || !ValidName(e.Name()) {
			continue
		}
		info, err := describe(dir, e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}

// describe reads a transcript's header, its first user event and its end line.
func describe(dir, name string) (Info, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("trace: %w", err)
	}
	info := Info{Name: name, Size: st.Size()}
	sc := bufio.NewScanner(io.LimitReader(f, headScan))
	sc.Buffer(make([]byte, 0, 4096), maxLine+256)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok && strings.HasPrefix(line, "# ") {
			switch k {
			case "protocol":
				info.Protocol = v
			case "session":
				info.Session = v
			case "remote":
				info.Remote = v
			case "start":
				info.Start, _ = time.Parse(lineTime, v)
			case "end":
				info.End, _ = time.Parse(lineTime, v)
			}
			continue
		}
		if ev, ok := strings.CutPrefix(line[min(len(lineTime), len(line)):], " -- user "); ok && info.User == "" {
			info.User = ev
		}
	}
	if info.End.IsZero() && st.Size() > headScan {
		// The end line is the last one.
		buf := make([]byte, 64)
		if n, _ := f.ReadAt(buf, st.Size()-int64(len(buf))); n > 0 {
			if _, v, ok := strings.Cut(string(buf[:n]), "\n# end: "); ok {
				info.End, _ = time.Parse(lineTime, strings.TrimSpace(v))
			}
		}
	}
	return info, nil
}

// Open opens the transcript name in dir for reading. A name that is not a transcript's
// (a path, "..", anything else) gets ErrNotFound without touching the file system.
func Open(dir, name string) (*os.File, error) {
	if !ValidName(name) {
		return nil, ErrNotFound
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	return f, nil
}
