package threading

// upperASCII maps a-z to A-Z and leaves every other octet as it is.
func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldKeys prepares strs for the i;ascii-casemap collation (RFC 4790 §9.2): the US-ASCII
// lower-case letters a-z are mapped to upper case A-Z, then the octets compare as
// i;octet does (§9.3), a string before any longer one it is a prefix of. Each string
// with a lower-case letter is replaced by its upper-cased copy, all copies sharing one new
// backing string; afterwards strings.Compare and == are the collation, at memcmp speed.
func foldKeys(strs []string) {
	size := 0
	for _, s := range strs {
		if hasLowerASCII(s) {
			size += len(s)
		}
	}
	if size == 0 {
		return
	}
	buf := make([]byte, 0, size)
	for _, s := range strs {
		if hasLowerASCII(s) {
			for i := 0; i < len(s); i++ {
				buf = append(buf, upperASCII(s[i]))
			}
		}
	}
	all := string(buf)
	off := 0
	for i, s := range strs {
		if hasLowerASCII(s) {
			strs[i] = all[off : off+len(s)]
			off += len(s)
		}
	}
}

func hasLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return true
		}
	}
	return false
}
