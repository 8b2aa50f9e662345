package imap

import "syscall"

// quickAckOption is TCP_QUICKACK (tcp(7)).
const quickAckOption = syscall.TCP_QUICKACK
