package config

import (
	"strings"
	"testing"
)

// store.url: empty by default (SQLite), from the file, LETTERBOX_STORE_URL or --store;
// anything but a postgres:// URL is refused, naming the setting, with no password shown.
func TestStoreURL(t *testing.T) {
	const pg = "postgres://lb:secret@db.example:5432/mail?sslmode=verify-full"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		file string
		want string
		err  string
	}{
		{name: "default: SQLite", want: ""},
		{name: "file", file: "store:\n  url: " + pg + "\n", want: pg},
		{name: "env", env: map[string]string{"LETTERBOX_STORE_URL": pg}, want: pg},
		{name: "flag over env", env: map[string]string{"LETTERBOX_STORE_URL": "postgres://env/x"}, args: []string{"--store", pg}, want: pg},
		{name: "postgresql scheme", args: []string{"--store", "postgresql://h/db"}, want: "postgresql://h/db"},
		{name: "not postgres", args: []string{"--store", "mysql://root:hunter2@h/db"}, err: "store.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Chdir(t.TempDir())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, tc.file))
			}
			cfg, err := Load(LoadOptions{Flags: flags(t, args...)})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("Load: %v, want an error naming %s without the password", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Store.URL != tc.want || cfg.Store.Postgres() != (tc.want != "") {
				t.Errorf("store.url %q (postgres %v), want %q", cfg.Store.URL, cfg.Store.Postgres(), tc.want)
			}
			if strings.Contains(cfg.Store.Redacted(), "secret") {
				t.Errorf("Redacted() = %q shows the password", cfg.Store.Redacted())
			}
		})
	}
}
