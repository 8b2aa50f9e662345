package mailimport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func makeMaildir(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadUIDList(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"v3": "3 V1705311000 N9 G3085f01b7f11094c501100008c4a11c1\n" +
			"1 :1705311000.M1P1.host\n" +
			"4 W412 S400 :1705311001.M2P1.host,S=400,W=412\n" +
			"7 :with:colon:2,S\n" + // an older Dovecot kept flags in the name
			"x :bad uid\n" +
			"8 Wnoname\n",
		"v1":  "1 1000 5\n2 1705311000.M1P1.host\n3 1705311001.M2P1.host:2,S\n",
		"bad": "3 N5\n",
	})
	l, err := ReadUIDList(filepath.Join(dir, "v3"))
	if err != nil {
		t.Fatal(err)
	}
	want := &UIDList{Version: 3, UIDValidity: 1705311000, NextUID: 9, UIDs: map[string]uint32{
		"1705311000.M1P1.host": 1, "1705311001.M2P1.host,S=400,W=412": 4, "with": 7}}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("v3: %+v\nwant %+v", l, want)
	}
	l, err = ReadUIDList(filepath.Join(dir, "v1"))
	want = &UIDList{Version: 1, UIDValidity: 1000, NextUID: 5, UIDs: map[string]uint32{
		"1705311000.M1P1.host": 2, "1705311001.M2P1.host": 3}}
	if err != nil || !reflect.DeepEqual(l, want) {
		t.Errorf("v1: %+v, %v\nwant %+v", l, err, want)
	}
	if _, err := ReadUIDList(filepath.Join(dir, "bad")); err == nil {
		t.Error("a header without UIDVALIDITY was accepted")
	}
}

func TestReadDovecotMaildir(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(t, dir)
	writeFiles(t, dir, map[string]string{
		UIDListFile:                  "3 V42 N6 Gx\n2 :100.M1.host\n5 :300.M3.host,S=10\n",
		KeywordsFile:                 "0 $Label1\n1 Work\n",
		"cur/100.M1.host:2,Sb":       "a",
		"cur/300.M3.host,S=10:2,RFa": "c",
		"new/400.M4.host":            "not in the list, newest: UID 8",
		"new/350.M5.host":            "not in the list: UID 7",
		"cur/200.M2.host:2,S":        "not in the list, oldest: UID 6",
		"tmp/500.M9.host":            "unfinished",
	})
	mb, err := ReadDovecotMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		UID   uint32
		Name  string
		Flags []string
	}
	var msgs []got
	for _, m := range mb.Messages {
		msgs = append(msgs, got{m.UID, filepath.Base(m.Path), m.Flags})
	}
	want := []got{
		{2, "100.M1.host:2,Sb", []string{`\Seen`, "Work"}},
		{5, "300.M3.host,S=10:2,RFa", []string{`\Answered`, `\Flagged`, "$Label1"}},
		{6, "200.M2.host:2,S", []string{`\Seen`}},
		{7, "350.M5.host", nil},
		{8, "400.M4.host", nil},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("messages:\n%+v\nwant\n%+v", msgs, want)
	}
	if mb.UIDValidity != 42 || mb.NextUID != 9 {
		t.Errorf("UIDVALIDITY %d, next UID %d; want 42, 9", mb.UIDValidity, mb.NextUID)
	}
}

func TestMaildirFolders(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"", ".Work", ".Work.Clients", ".Sent", ".Entw&APw-rfe", ".Trash"} {
		makeMaildir(t, filepath.Join(root, d))
	}
	// Not folders: no cur/new, or not a Maildir++ name.
	writeFiles(t, root, map[string]string{".NotAMaildir/x": "", "plain/cur/x": "", "dovecot-uidlist": ""})
	os.Remove(filepath.Join(root, ".Trash", "cur"))
	got, err := MaildirFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	want := []string{"INBOX", "Entwürfe", "Sent", "Work", "Work/Clients"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("folders %q, want %q", names, want)
	}
	makeMaildir(t, filepath.Join(root, ".a..b"))
	if _, err := MaildirFolders(root); err == nil {
		t.Error("an empty Maildir++ name level was accepted")
	}
}

func TestMailboxNameUTF7(t *testing.T) {
	for _, c := range []struct{ utf8, utf7 string }{
		{"Entwürfe", "Entw&APw-rfe"},
		{"Tom & Jerry", "Tom &- Jerry"},
		{"日本語", "&ZeVnLIqe-"},
		{"plain", "plain"},
		{"a~b", "a~b"},
	} {
		if got := EncodeMailboxName(c.utf8); got != c.utf7 {
			t.Errorf("EncodeMailboxName(%q) = %q, want %q", c.utf8, got, c.utf7)
		}
		if got, err := DecodeMailboxName(c.utf7); err != nil || got != c.utf8 {
			t.Errorf("DecodeMailboxName(%q) = %q, %v; want %q", c.utf7, got, err, c.utf8)
		}
	}
	for _, bad := range []string{"&", "&AP", "&A-"} {
		if _, err := DecodeMailboxName(bad); err == nil {
			t.Errorf("DecodeMailboxName(%q) accepted", bad)
		}
	}
}

// FuzzDovecot: any dovecot-uidlist parses without panic into non-zero UIDs; any folder
// name survives modified UTF-7 both ways and maps to a directory inside the export root;
// any on-disk name decodes to valid UTF-8 or an error.
func FuzzDovecot(f *testing.F) {
	f.Add("3 V1705311000 N9 G3085\n1 :a.host\n4 W412 S400 :b.host,S=400:2,S\n", "Work/Clients", "Entw&APw-rfe")
	f.Add("1 1000 5\n2 a.host\n", "../../etc", "&ZeVnLIqe-")
	f.Add("2 1 1\n0 zero\nx :y\n", "v1.2 notes/..", "&-&AC4-")
	f.Fuzz(func(t *testing.T, uidlist, name, onDisk string) {
		path := filepath.Join(t.TempDir(), UIDListFile)
		if err := os.WriteFile(path, []byte(uidlist), 0o600); err != nil {
			t.Fatal(err)
		}
		if l, err := ReadUIDList(path); err == nil {
			if l.UIDValidity == 0 {
				t.Error("a list without UIDVALIDITY was accepted")
			}
			for base, uid := range l.UIDs {
				if uid == 0 || base == "" || strings.Contains(base, ":") {
					t.Errorf("record %q -> %d", base, uid)
				}
			}
		}
		if utf8.ValidString(name) {
			if got, err := DecodeMailboxName(EncodeMailboxName(name)); err != nil || got != name {
				t.Errorf("%q -> %q -> %q, %v", name, EncodeMailboxName(name), got, err)
			}
			root := "/export/root"
			dir, err := MaildirFolderDir(root, name)
			if rel, rerr := filepath.Rel(root, dir); err == nil && (rerr != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator))) {
				t.Errorf("folder %q is written to %q, outside %s or below another folder", name, dir, root)
			}
		}
		if got, err := DecodeMailboxName(onDisk); err == nil && !utf8.ValidString(got) {
			t.Errorf("%q decodes to invalid UTF-8 %q", onDisk, got)
		}
	})
}
