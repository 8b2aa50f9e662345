package threading

// compareCasemap compares a and b under the i;ascii-casemap collation (RFC 4790 §9.2):
// US-ASCII lower-case letters are mapped to upper case, then the octets are compared as
// i;octet does (RFC 4790 §9.3), a shorter string before any string it is a prefix of.
// It returns -1, 0 or +1 and copies nothing.
func compareCasemap(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := upperASCII(a[i]), upperASCII(b[i])
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// casemapKey returns s with US-ASCII letters in upper case: a key under which strings
// equal under i;ascii-casemap are equal. It returns s itself when nothing changes.
func casemapKey(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = upperASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}
