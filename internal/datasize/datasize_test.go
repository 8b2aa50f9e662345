package datasize

import "testing"

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1024", 1024},
		{"1024B", 1024},
		{"10K", 10 * KiB},
		{"10k", 10 * KiB},
		{"10KB", 10 * KiB},
		{"10KiB", 10 * KiB},
		{"50M", 50 * MiB},
		{"500MB", 500 * MiB},
		{"500 MB", 500 * MiB},
		{" 2mib ", 2 * MiB},
		{"1GiB", GiB},
		{"1G", GiB},
		{"3TB", 3 * TiB},
	}
	for _, tc := range good {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1.5G", "10X", "10KBB", "1 000", "99999999999999999999", "9000000000G"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	for _, n := range []int64{0, 1, 1023, KiB, 10 * KiB, 50 * MiB, GiB, 3 * TiB} {
		s := Format(n)
		back, err := Parse(s)
		if err != nil || back != n {
			t.Errorf("Format(%d) = %q, which parses as %d, %v", n, s, back, err)
		}
	}
	if got := Format(1536 * KiB); got != "1.5M" {
		t.Errorf("Format(1.5 MiB) = %q, want 1.5M", got)
	}
}
