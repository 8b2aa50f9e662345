package config

import (
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/internal/datasize"
)

func TestDeliveryDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LMTP.DetailDelimiter != "+" || !cfg.LMTP.DetailToFolder {
		t.Errorf("lmtp = %+v, want delimiter + and detail_to_folder", cfg.LMTP)
	}
	if got := cfg.Quota.GraceFor(1000); got != 100 {
		t.Errorf("default grace of a 1000-byte quota = %d, want 100 (10%%)", got)
	}
}

func TestDeliverySettings(t *testing.T) {
	for _, tc := range []struct {
		file, env string
		delim     string
		toFolder  bool
		grace     int64 // GraceFor(1 datasize.MiB)
		mgrace    int64 // MessageGraceFor(1000): a size allows no messages
	}{
		{"lmtp:\n  detail_delimiter: \"+-\"\n  detail_to_folder: false\nquota:\n  grace: 10M\n", "", "+-", false, 10 * datasize.MiB, 0},
		{"quota:\n  grace: 0\n", "", "+", true, 0, 0},
		{"quota:\n  grace: 2.5%\n", "", "+", true, datasize.MiB / 40, 25},
		{"quota:\n  grace: 4096\n", "", "+", true, 4096, 0},
		{"", "", "", true, datasize.MiB / 10, 100}, // LETTERBOX_LMTP_DETAIL_DELIMITER= disables details
	} {
		clearEnv(t)
		if tc.file == "" {
			t.Setenv("LETTERBOX_LMTP_DETAIL_DELIMITER", "")
		}
		opts := LoadOptions{}
		if tc.file != "" {
			opts.File = writeFile(t, tc.file)
		}
		cfg, err := Load(opts)
		if err != nil {
			t.Errorf("%q: %v", tc.file, err)
			continue
		}
		if cfg.LMTP.DetailDelimiter != tc.delim || cfg.LMTP.DetailToFolder != tc.toFolder {
			t.Errorf("%q: lmtp = %+v", tc.file, cfg.LMTP)
		}
		if got := cfg.Quota.GraceFor(datasize.MiB); got != tc.grace {
			t.Errorf("%q: GraceFor(1M) = %d, want %d", tc.file, got, tc.grace)
		}
		if got := cfg.Quota.MessageGraceFor(1000); got != tc.mgrace {
			t.Errorf("%q: MessageGraceFor(1000) = %d, want %d", tc.file, got, tc.mgrace)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%q: warnings for known keys: %v", tc.file, cfg.Warnings)
		}
	}
}

func TestDeliveryValidation(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"quota:\n  grace: lots\n", "quota.grace"},
		{"quota:\n  grace: -5%\n", "quota.grace"},
		{"quota:\n  grace: ten%\n", "quota.grace"},
		{"lmtp:\n  detail_delimiter: \"@\"\n", "lmtp.detail_delimiter"},
		{"lmtp:\n  detail_to_folder: maybe\n", "lmtp.detail_to_folder"},
	} {
		clearEnv(t)
		_, err := Load(LoadOptions{File: writeFile(t, tc.file)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want one mentioning %s", tc.file, err, tc.want)
		}
	}
}
