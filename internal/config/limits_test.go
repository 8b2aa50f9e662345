package config

import (
	"strings"
	"testing"
	"time"
)

// The login penalty (auth.max_failures, auth.failure_window, auth.block_duration) and
// connection limit (limits.max_*) settings.

func TestPenaltyAndConnectionLimitDefaults(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"auth.max_failures", cfg.Auth.MaxFailures, 10},
		{"auth.failure_window", cfg.Auth.FailureWindow, 10 * time.Minute},
		{"auth.block_duration", cfg.Auth.BlockDuration, 15 * time.Minute},
		{"limits.max_connections", cfg.Limits.MaxConnections, 1000},
		{"limits.max_connections_per_ip", cfg.Limits.MaxConnectionsPerIP, 50},
		{"limits.max_userip_connections", cfg.Limits.MaxUserIPConnections, 10},
		{"limits.recipients", cfg.Limits.Recipients, 1000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPenaltyAndConnectionLimitSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("LETTERBOX_LIMITS_MAX_CONNECTIONS_PER_IP", "7")
	t.Setenv("LETTERBOX_AUTH_BLOCK_DURATION", "1h")
	file := "auth:\n  max_failures: 0\n  failure_window: 30s\nlimits:\n  max_connections: 20\n  max_userip_connections: 3\n  recipients: 50\n"
	cfg, err := Load(LoadOptions{File: writeFile(t, file)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.MaxFailures != 0 || cfg.Auth.FailureWindow != 30*time.Second || cfg.Auth.BlockDuration != time.Hour {
		t.Errorf("auth = %+v", cfg.Auth)
	}
	if cfg.Limits.MaxConnections != 20 || cfg.Limits.MaxConnectionsPerIP != 7 || cfg.Limits.MaxUserIPConnections != 3 || cfg.Limits.Recipients != 50 {
		t.Errorf("limits = %+v", cfg.Limits)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings for known keys: %v", cfg.Warnings)
	}
}

func TestPenaltyAndConnectionLimitValidation(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"auth:\n  max_failures: many\n", "auth.max_failures"},
		{"auth:\n  max_failures: -1\n", "auth.max_failures"},
		{"auth:\n  failure_window: 0s\n", "auth.failure_window"},
		{"auth:\n  block_duration: forever\n", "auth.block_duration"},
		{"limits:\n  max_connections: -5\n", "limits.max_connections"},
		{"limits:\n  max_connections_per_ip: x\n", "limits.max_connections_per_ip"},
		{"limits:\n  max_userip_connections: 1.5.2\n", "limits.max_userip_connections"},
	} {
		clearEnv(t)
		_, err := Load(LoadOptions{File: writeFile(t, tc.file)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want one mentioning %s", tc.file, err, tc.want)
		}
	}
}

// limits.header_size and limits.mime_depth: what new mail is refused for (store content
// limits), and how 0 ("no limit") reaches the store (negative there; 0 is its default).
func TestContentLimitSettings(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.HeaderSize != 1<<20 || cfg.Limits.MIMEDepth != 64 {
		t.Errorf("defaults: header_size %d, mime_depth %d; want 1 MiB and 64", cfg.Limits.HeaderSize, cfg.Limits.MIMEDepth)
	}
	if cfg.Limits.StoreHeaderSize() != 1<<20 || cfg.Limits.StoreMIMEDepth() != 64 {
		t.Errorf("store options %d %d", cfg.Limits.StoreHeaderSize(), cfg.Limits.StoreMIMEDepth())
	}

	t.Setenv("LETTERBOX_LIMITS_MIME_DEPTH", "0")
	cfg, err = Load(LoadOptions{File: writeFile(t, "limits:\n  header_size: 64K\n")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.HeaderSize != 64<<10 || cfg.Limits.MIMEDepth != 0 || len(cfg.Warnings) != 0 {
		t.Errorf("limits = %+v, warnings %v", cfg.Limits, cfg.Warnings)
	}
	if cfg.Limits.StoreMIMEDepth() >= 0 {
		t.Errorf("mime_depth 0 (no limit) reaches the store as %d, want negative", cfg.Limits.StoreMIMEDepth())
	}
	cfg, err = Load(LoadOptions{File: writeFile(t, "limits:\n  header_size: 0\n")})
	if err != nil || cfg.Limits.StoreHeaderSize() >= 0 {
		t.Errorf("header_size 0: %v, store gets %d", err, cfg.Limits.StoreHeaderSize())
	}

	for _, tc := range []struct{ file, want string }{
		{"limits:\n  header_size: big\n", "limits.header_size"},
		{"limits:\n  header_size: -1\n", "limits.header_size"},
		{"limits:\n  mime_depth: -3\n", "limits.mime_depth"},
		{"limits:\n  mime_depth: deep\n", "limits.mime_depth"},
	} {
		clearEnv(t)
		_, err := Load(LoadOptions{File: writeFile(t, tc.file)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want one mentioning %s", tc.file, err, tc.want)
		}
	}
}
