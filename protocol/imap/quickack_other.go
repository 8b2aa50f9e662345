//go:build !linux

package imap

// quickAckOption: no TCP_QUICKACK outside Linux.
const quickAckOption = 0
