package sqlite

import (
	"errors"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// Temporary reports whether err is SQLite's way of saying "try again": a lock held too
// long by another connection or process (SQLITE_BUSY, SQLITE_LOCKED), an I/O error or too
// little memory (SQLITE_IOERR, SQLITE_NOMEM). The store checks StorageFull first: an I/O
// error of a full disk is that.
func Temporary(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrIoErr, sqlite3.ErrNomem:
			return true
		}
	}
	return false
}

// StorageFull reports whether err says the database cannot take more data: SQLITE_FULL or
// SQLITE_READONLY, or an I/O error carrying ENOSPC, EDQUOT or EROFS (a full disk, an
// exhausted filesystem quota, a read-only filesystem). An error that is not SQLite's is
// looked at for those errnos itself, so that the store's spool files are judged alike.
func StorageFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull, sqlite3.ErrReadonly:
			return true
		}
		err = se.SystemErrno
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}
