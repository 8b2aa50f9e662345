package mailimport

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestReadMaildir(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"new/1705311000.M1P1.host":             "new message",
		"cur/1705311001.M2P1.host:2,S":         "seen",
		"cur/999.M0P1.host:2,FRTDPa":           "oldest, all flags",
		"cur/1705311001.M1P1.host:2,":          "same second, sorts by name",
		"tmp/1705311002.M3P1.host":             "unfinished delivery",
		"cur/.hidden":                          "ignored",
		"cur/1705311003.M4P1.host,S=42:2,Sbzz": "keywords",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 $Label1\n1 Work\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "new/1705311000.M1P1.host"), mtime, mtime); err != nil {
		t.Fatal(err)
	}

	msgs, err := ReadMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		rel, _ := filepath.Rel(dir, m.Path)
		got = append(got, rel)
	}
	want := []string{
		"cur/999.M0P1.host:2,FRTDPa",
		"new/1705311000.M1P1.host",
		"cur/1705311001.M1P1.host:2,",
		"cur/1705311001.M2P1.host:2,S",
		"cur/1705311003.M4P1.host,S=42:2,Sbzz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %q\nwant %q", got, want)
	}
	flags := [][]string{
		{`\Flagged`, `\Answered`, `\Deleted`, `\Draft`, "$Label1"},
		nil, nil, {`\Seen`},
		{`\Seen`, "Work"},
	}
	for i, m := range msgs {
		if !reflect.DeepEqual(m.Flags, flags[i]) {
			t.Errorf("%s: flags %q, want %q", got[i], m.Flags, flags[i])
		}
	}
	if !msgs[1].Date.Equal(mtime) {
		t.Errorf("date = %v, want the file's mtime %v", msgs[1].Date, mtime)
	}
}

func TestReadMaildirRejectsPlainDirectory(t *testing.T) {
	if _, err := ReadMaildir(t.TempDir()); err == nil {
		t.Error("a directory without cur/ and new/ was read as a Maildir")
	}
}
