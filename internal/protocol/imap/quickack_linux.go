package imap

import "syscall"

// setQuickAck sets TCP_QUICKACK (tcp(7)): Linux sends the ACK it is holding at once and
// leaves its delayed-ACK ("pingpong") mode until it next sees interactive traffic.
func setQuickAck(fd uintptr) {
	syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}
