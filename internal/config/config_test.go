package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/spf13/pflag"
)

// clearEnv unsets every LETTERBOX_* variable for the test, so the developer's environment
// cannot leak into the results.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "letterbox.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddGlobalFlags(fs)
	AddServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir()) // no ./letterbox.yaml
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data", cfg.Data, "./letterbox-data"},
		{"imap.addr", cfg.IMAP.Addr, "127.0.0.1:1143"},
		{"imaps.addr", cfg.IMAPS.Addr, ""},
		{"pop3.addr", cfg.POP3.Addr, "127.0.0.1:1110"},
		{"pop3s.addr", cfg.POP3S.Addr, ""},
		{"lmtp.addr", cfg.LMTP.Addr, "127.0.0.1:2424"},
		{"http.addr", cfg.HTTP.Addr, "127.0.0.1:8080"},
		{"tls.self_signed", cfg.TLS.SelfSigned, false},
		{"auth.allow_plaintext unset", cfg.Auth.AllowPlaintext == nil, true},
		{"auth.failure_delay", cfg.Auth.FailureDelay, 2 * time.Second},
		{"pop3.uidl_format", cfg.POP3.UIDLFormat, "%08Xu%08Xv"},
		{"pop3.mark_seen", cfg.POP3.MarkSeen, true},
		{"pop3.delete", cfg.POP3.Delete, DeleteExpunge},
		{"pop3.expire", cfg.POP3.ExpireAfter, time.Duration(0)},
		{"pop3.idle_timeout", cfg.POP3.IdleTimeout, 10 * time.Minute},
		{"imap.idle_timeout", cfg.IMAP.IdleTimeout, 30 * time.Minute},
		{"imap.qresync_retention", cfg.IMAP.QResyncRetention, 30 * 24 * time.Hour},
		{"imap.message_limit", cfg.IMAP.MessageLimit, 100000},
		{"limits.message_size", cfg.Limits.MessageSize, 50 * datasize.MiB},
		{"folders.trash", cfg.Folders.Trash, "Trash"},
		{"log.format", cfg.Log.Format, "text"},
		{"api.enabled", cfg.API.Enabled, false},
		{"api.token", cfg.API.Token, ""},
		{"trace.dir", cfg.Trace.Dir, ""},
		{"trace.body_limit", cfg.Trace.BodyLimit, 4 * datasize.KiB},
		{"gc.heap_floor", cfg.GC.HeapFloor, 32 * datasize.MiB},
		{"file", cfg.File, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if cfg.Hostname == "" {
		t.Error("hostname is empty")
	}
	if got := cfg.Folders.Store(); len(got) != 5 || got["Sent"] != `\Sent` || got["Archives"] != `\Archive` {
		t.Errorf("Folders.Store() = %v", got)
	}
}

// TestPrecedence checks default < file < environment < flag for a top-level key (data) and
// nested ones (imap.addr, limits.message_size, pop3.mark_seen).
func TestPrecedence(t *testing.T) {
	file := `
data: /from/file
imap:
  addr: 127.0.0.1:1001
pop3:
  mark_seen: false
limits:
  message_size: 10M
`
	tests := []struct {
		name     string
		file     bool
		env      map[string]string
		args     []string
		data     string
		imap     string
		size     int64
		markSeen bool
	}{
		{name: "defaults", data: "./letterbox-data", imap: "127.0.0.1:1143", size: 50 * datasize.MiB, markSeen: true},
		{name: "file", file: true, data: "/from/file", imap: "127.0.0.1:1001", size: 10 * datasize.MiB, markSeen: false},
		{name: "env without file (keys never in a file)", env: map[string]string{
			"LETTERBOX_DATA": "/from/env", "LETTERBOX_IMAP_ADDR": "127.0.0.1:2002",
			"LETTERBOX_LIMITS_MESSAGE_SIZE": "1G", "LETTERBOX_POP3_MARK_SEEN": "false",
		}, data: "/from/env", imap: "127.0.0.1:2002", size: datasize.GiB, markSeen: false},
		{name: "env over file", file: true, env: map[string]string{
			"LETTERBOX_DATA": "/from/env", "LETTERBOX_IMAP_ADDR": "127.0.0.1:2002",
			"LETTERBOX_LIMITS_MESSAGE_SIZE": "20MiB", "LETTERBOX_POP3_MARK_SEEN": "true",
		}, data: "/from/env", imap: "127.0.0.1:2002", size: 20 * datasize.MiB, markSeen: true},
		{name: "flag over env over file", file: true,
			env:  map[string]string{"LETTERBOX_DATA": "/from/env", "LETTERBOX_IMAP_ADDR": "127.0.0.1:2002"},
			args: []string{"--data", "/from/flag", "--imap-addr", "127.0.0.1:3003"},
			data: "/from/flag", imap: "127.0.0.1:3003", size: 10 * datasize.MiB, markSeen: false},
		{name: "empty env disables a listener", env: map[string]string{"LETTERBOX_IMAP_ADDR": ""},
			data: "./letterbox-data", imap: "", size: 50 * datasize.MiB, markSeen: true},
		{name: "empty flag disables a listener", env: map[string]string{"LETTERBOX_IMAP_ADDR": "127.0.0.1:2002"},
			args: []string{"--imap-addr="}, data: "./letterbox-data", imap: "", size: 50 * datasize.MiB, markSeen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Chdir(t.TempDir())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file {
				args = append(args, "--config", writeFile(t, file))
			}
			cfg, err := Load(LoadOptions{Flags: flags(t, args...)})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Data != tc.data || cfg.IMAP.Addr != tc.imap || cfg.Limits.MessageSize != tc.size || cfg.POP3.MarkSeen != tc.markSeen {
				t.Errorf("got data=%q imap=%q size=%d mark_seen=%v; want %q %q %d %v",
					cfg.Data, cfg.IMAP.Addr, cfg.Limits.MessageSize, cfg.POP3.MarkSeen,
					tc.data, tc.imap, tc.size, tc.markSeen)
			}
		})
	}
}

func TestDefaultFileInWorkingDirectory(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("data: /from/cwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "/from/cwd" || cfg.File != DefaultFile {
		t.Errorf("data = %q from %q; want /from/cwd from %s", cfg.Data, cfg.File, DefaultFile)
	}
}

func TestMissingExplicitFileIsAnError(t *testing.T) {
	clearEnv(t)
	if _, err := Load(LoadOptions{File: filepath.Join(t.TempDir(), "nope.yaml")}); err == nil {
		t.Fatal("Load with a missing --config file succeeded")
	}
}

func TestUnknownKeysStop(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "data: /x\nimap:\n  adr: typo\nstore:\n  urll: postgres://x\nfrobnicate: 1\n")
	_, err := Load(LoadOptions{File: path})
	if err == nil {
		t.Fatal("a file with unknown keys was accepted")
	}
	for _, want := range []string{
		path + `: unknown setting "imap.adr" (did you mean "imap.addr"?)`,
		path + `: unknown setting "store.urll" (did you mean "store.url"?)`,
		`unknown setting "frobnicate"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to say %s", err, want)
		}
	}
	// A known key given as a section is no setting either.
	if _, err := Load(LoadOptions{File: writeFile(t, "limits:\n  message_size:\n    max: 1M\n")}); err == nil ||
		!strings.Contains(err.Error(), `"limits.message_size.max" (did you mean "limits.message_size"?)`) {
		t.Errorf("a nested unknown key: %v", err)
	}
}

func TestUnknownEnvironmentWarns(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_STORE_URLL", "postgres://typo")
	t.Setenv("LETTERBOX_IMAP_ADDR", "127.0.0.1:0")
	t.Setenv("LETTERBOX_CONFIG", "")
	t.Setenv("LETTERBOX_TEST_STORE", "postgres") // the tests' own: no setting, no warning
	t.Setenv("LETTERBOX_BIN", "/bin/true")
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("an unknown variable must not fail: %v", err)
	}
	want := "environment: LETTERBOX_STORE_URLL is not a setting and is ignored (did you mean LETTERBOX_STORE_URL?)"
	if !slices.Equal(cfg.Warnings, []string{want}) {
		t.Errorf("warnings = %q, want only %q", cfg.Warnings, want)
	}
	if cfg.Store.URL != "" {
		t.Errorf("store.url = %q from a mistyped variable", cfg.Store.URL)
	}
}

func TestFlagsComeFromTheTable(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddGlobalFlags(fs)
	AddServeFlags(fs)
	n := 0
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		n++
		f := fs.Lookup(s.flag)
		if f == nil {
			t.Errorf("%s: no flag --%s", s.key, s.flag)
			continue
		}
		if f.DefValue != fmt.Sprint(s.def) || f.Usage == "" {
			t.Errorf("--%s: default %q, usage %q; want default %v and a usage", s.flag, f.DefValue, f.Usage, s.def)
		}
	}
	if got := strings.Count(fs.FlagUsages(), "\n"); got != n+1 { // and --config
		t.Errorf("%d flags defined, want %d settings' and --config:\n%s", got, n+1, fs.FlagUsages())
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"pop3.delete", "pop3:\n  delete: shred\n", "pop3.delete"},
		{"message size", "limits:\n  message_size: lots\n", "limits.message_size"},
		{"duration", "auth:\n  failure_delay: soon\n", "auth.failure_delay"},
		{"allow_plaintext", "auth:\n  allow_plaintext: maybe\n", "auth.allow_plaintext"},
		{"trusted network", "auth:\n  trusted_networks: [10.0.0.0/8, bogus]\n", "bogus"},
		{"proxy network", "proxy:\n  trusted_networks: [10.0.0.0/8, 10.1.2.3/33]\n", "proxy.trusted_networks"},
		{"proxy required without proxies", "proxy:\n  required: true\n", "proxy.required"},
		{"proxy required not a bool", "proxy:\n  trusted_networks: [10.0.0.1]\n  required: sometimes\n", "proxy.required"},
		{"imaps without tls", "imaps:\n  addr: 127.0.0.1:993\n", "imaps.addr"},
		{"cert without key", "tls:\n  cert: /c.pem\n", "tls.cert"},
		{"log format", "log:\n  format: xml\n", "log.format"},
		{"log level", "log:\n  level: chatty\n", "log.level"},
		{"expire", "pop3:\n  expire: sometimes\n", "pop3.expire"},
		{"qresync retention", "imap:\n  qresync_retention: a while\n", "imap.qresync_retention"},
		{"message limit", "imap:\n  message_limit: -1\n", "imap.message_limit"},
		{"message limit word", "imap:\n  message_limit: many\n", "imap.message_limit"},
		{"empty data", "data: \"\"\n", "data"},
		{"heap floor", "gc:\n  heap_floor: big\n", "gc.heap_floor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			_, err := Load(LoadOptions{File: writeFile(t, tc.file)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestAuthSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_AUTH_TRUSTED_NETWORKS", "10.0.0.0/8, 192.0.2.7")
	t.Setenv("LETTERBOX_AUTH_ALLOW_PLAINTEXT", "false")
	cfg, err := Load(LoadOptions{File: writeFile(t, "pop3:\n  expire: 30d\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if len(cfg.Auth.TrustedNetworks) != 2 || cfg.Auth.TrustedNetworks[0] != want[0] || cfg.Auth.TrustedNetworks[1] != want[1] {
		t.Errorf("trusted networks = %v, want %v", cfg.Auth.TrustedNetworks, want)
	}
	if cfg.Auth.AllowPlaintext == nil || *cfg.Auth.AllowPlaintext {
		t.Errorf("allow_plaintext = %v, want false", cfg.Auth.AllowPlaintext)
	}
	if cfg.POP3.ExpireAfter != 30*24*time.Hour {
		t.Errorf("pop3.expire 30d = %v", cfg.POP3.ExpireAfter)
	}
}

// TestQResyncRetention: imap.qresync_retention in days, as a duration, or never, and how
// the store is told (0 there would be its default, so never is negative).
func TestQResyncRetention(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		store time.Duration
	}{
		{"7d", 7 * 24 * time.Hour, 7 * 24 * time.Hour},
		{"36h", 36 * time.Hour, 36 * time.Hour},
		{"NEVER", 0, -1},
		{"0", 0, -1},
	} {
		clearEnv(t)
		t.Setenv("LETTERBOX_IMAP_QRESYNC_RETENTION", tc.value)
		cfg, err := Load(LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		if cfg.IMAP.QResyncRetention != tc.want || cfg.IMAP.StoreExpungeRetention() != tc.store {
			t.Errorf("%s: retention %v, for the store %v; want %v, %v", tc.value,
				cfg.IMAP.QResyncRetention, cfg.IMAP.StoreExpungeRetention(), tc.want, tc.store)
		}
	}
}

// store.mmap_size: 2G by default, 0 turns the map off (negative for the store, whose 0
// means its default), and the URL set beside it does not reset it.
func TestStoreMmapSize(t *testing.T) {
	for _, tc := range []struct {
		value       string
		want, store int64
	}{
		{"", 2 << 30, 2 << 30},
		{"256M", 256 << 20, 256 << 20},
		{"0", 0, -1},
	} {
		clearEnv(t)
		if tc.value != "" {
			t.Setenv("LETTERBOX_STORE_MMAP_SIZE", tc.value)
		}
		t.Setenv("LETTERBOX_STORE_URL", "")
		cfg, err := Load(LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		if cfg.Store.MmapSize != tc.want || cfg.Store.StoreMmapSize() != tc.store {
			t.Errorf("%q: mmap size %d, for the store %d; want %d, %d", tc.value,
				cfg.Store.MmapSize, cfg.Store.StoreMmapSize(), tc.want, tc.store)
		}
	}
	clearEnv(t)
	t.Setenv("LETTERBOX_STORE_MMAP_SIZE", "-1")
	if _, err := Load(LoadOptions{}); err == nil {
		t.Error("store.mmap_size -1 accepted")
	}
}

// TestProxySettings: proxy.trusted_networks and proxy.required from the file and the
// environment; by default nobody is a proxy.
func TestProxySettings(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Proxy.TrustedNetworks) != 0 || cfg.Proxy.Required {
		t.Errorf("default proxy settings = %+v, want no proxies, not required", cfg.Proxy)
	}
	cfg, err = Load(LoadOptions{File: writeFile(t, "proxy:\n  trusted_networks: [127.0.0.1, \"2001:db8::/48\"]\n  required: true\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("2001:db8::/48")}
	if !slices.Equal(cfg.Proxy.TrustedNetworks, want) || !cfg.Proxy.Required {
		t.Errorf("proxy settings from the file = %+v, want %v, required", cfg.Proxy, want)
	}
	t.Setenv("LETTERBOX_PROXY_TRUSTED_NETWORKS", "10.0.0.0/8 192.0.2.7")
	t.Setenv("LETTERBOX_PROXY_REQUIRED", "false")
	cfg, err = Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if !slices.Equal(cfg.Proxy.TrustedNetworks, want) || cfg.Proxy.Required {
		t.Errorf("proxy settings from the environment = %+v, want %v, not required", cfg.Proxy, want)
	}
}

func TestFlagBoolOverridesFile(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "tls:\n  self_signed: false\n")
	cfg, err := Load(LoadOptions{Flags: flags(t, "--config", path, "--tls-self-signed")})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.SelfSigned {
		t.Error("--tls-self-signed did not override the file")
	}
}

func TestAPISettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_API_TOKEN", " s3cret ")
	cfg, err := Load(LoadOptions{File: writeFile(t, "api:\n  enabled: true\n  token: from-file\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.API.Enabled || cfg.API.Token != "s3cret" {
		t.Errorf("api = %+v, want enabled with the environment's token", cfg.API)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	if _, err := Load(LoadOptions{File: writeFile(t, "api:\n  enabled: maybe\n")}); err == nil || !strings.Contains(err.Error(), "api.enabled") {
		t.Errorf("api.enabled: maybe gave %v", err)
	}
}

func TestDefaultsIgnoreFileAndEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_IMAP_ADDR", "127.0.0.1:9999")
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("pop3:\n  addr: 127.0.0.1:9998\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IMAP.Addr != "127.0.0.1:1143" || cfg.POP3.Addr != "127.0.0.1:1110" || cfg.File != "" || cfg.API.Enabled {
		t.Errorf("Defaults() = imap %s, pop3 %s, file %q, api %v", cfg.IMAP.Addr, cfg.POP3.Addr, cfg.File, cfg.API.Enabled)
	}
}

func TestPprofIsOffUnlessAsked(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(LoadOptions{Flags: flags(t)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Pprof {
		t.Error("http.pprof is on by default")
	}
	for name, opts := range map[string]LoadOptions{
		"--pprof": {Flags: flags(t, "--pprof")},
		"file":    {File: writeFile(t, "http:\n  pprof: true\n")},
	} {
		cfg, err := Load(opts)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.HTTP.Pprof {
			t.Errorf("%s did not turn http.pprof on", name)
		}
	}
}

func TestTraceSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_TRACE_BODY_LIMIT", "64K")
	file := writeFile(t, "trace:\n  dir: /from/file\n")
	cfg, err := Load(LoadOptions{File: file, Flags: flags(t, "--trace", "/from/flag")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trace.Dir != "/from/flag" || cfg.Trace.BodyLimit != 64*datasize.KiB {
		t.Errorf("trace settings: %+v", cfg.Trace)
	}
	t.Setenv("LETTERBOX_TRACE_BODY_LIMIT", "lots")
	if _, err := Load(LoadOptions{File: file}); err == nil || !strings.Contains(err.Error(), "trace.body_limit") {
		t.Errorf("a bad trace.body_limit: %v", err)
	}
}
