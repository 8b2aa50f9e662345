//go:build !linux

package imap

// setQuickAck does nothing where TCP_QUICKACK does not exist.
func setQuickAck(uintptr) {}
