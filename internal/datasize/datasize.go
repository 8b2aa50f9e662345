// Package datasize reads and writes sizes as settings and people spell them: "50M",
// "1GiB", "10K", in powers of 1024 as Dovecot's quota settings are. internal/config parses
// limits and quotas with it; the commands, the test API and the inspector print sizes with
// it. It imports only the standard library.
package datasize

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size units are powers of 1024, as in Dovecot's quota settings.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

var errSizeSyntax = errors.New("want a number with an optional unit K, M, G or T (with or without B or iB)")

// Parse parses a size such as "500MB", "50M", "1GiB", "10K" or "1024": a non-negative
// whole number with an optional unit K, M, G or T, with or without a trailing B or iB, in
// either case. Units are powers of 1024 ("1K" is 1024 bytes, "1KB" too).
func Parse(s string) (int64, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && in[i] >= '0' && in[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: %w", s, errSizeSyntax)
	}
	n, err := strconv.ParseInt(in[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, errSizeSyntax)
	}
	unit := strings.ToLower(strings.TrimSpace(in[i:]))
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = KiB
	case "m", "mb", "mib":
		mult = MiB
	case "g", "gb", "gib":
		mult = GiB
	case "t", "tb", "tib":
		mult = TiB
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q: %w", s, unit, errSizeSyntax)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// Format renders a size for people: whole units when exact ("50M", "1G", "512"), one
// decimal otherwise ("1.5M"). Parse reads the exact forms back.
func Format(n int64) string {
	units := []struct {
		size   int64
		suffix string
	}{{TiB, "T"}, {GiB, "G"}, {MiB, "M"}, {KiB, "K"}}
	for _, u := range units {
		if n >= u.size {
			if n%u.size == 0 {
				return strconv.FormatInt(n/u.size, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
