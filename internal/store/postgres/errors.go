package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Temporary reports whether err is PostgreSQL's way of saying "try again": a serialization
// failure or deadlock (class 40), a lock not available (55P03), too many connections or
// too little memory (class 53, but disk_full, which StorageFull reports), an operator
// intervention such as a shutdown or a cancel (class 57), or a lost or refused connection.
func Temporary(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "55P03":
			return true
		case len(pe.Code) == 5 && (pe.Code[:2] == "40" || pe.Code[:2] == "53" || pe.Code[:2] == "57" || pe.Code[:2] == "08"):
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// StorageFull reports whether err says the server cannot take more data: disk_full
// (53100), or a database in read-only mode (25006, read_only_sql_transaction, as on a hot
// standby).
func StorageFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "53100" || pe.Code == "25006")
}
