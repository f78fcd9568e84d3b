package mysql

import (
	"errors"
	"fmt"
	"time"
)

// Flavour names, as in the cluster spec and in GTIDSet.Flavor.
const (
	flavorMariaDB = "mariadb"
	flavorMySQL   = "mysql"
)

// Flavor is the SQL dialect of one server software. Its statement methods
// are pure: they build SQL from their arguments and talk to no server.
type Flavor interface {
	// Name is "mariadb" or "mysql".
	Name() string
	// ParseGTIDSet parses a GTID set in this flavour's syntax.
	ParseGTIDSet(s string) (GTIDSet, error)

	// ChangeSource points replication at src, positioned by GTID.
	ChangeSource(src Source) []string
	StartReplica() string
	StopReplica() string
	// StopReplicaIO stops fetching from the source but lets the applier
	// finish what it already fetched (the first step of a failover).
	StopReplicaIO() string
	// ResetReplicaAll forgets the source entirely.
	ResetReplicaAll() string
	// SetReadOnly fences writes (on) or opens the server to them (off).
	SetReadOnly(on bool) []string
	// GTIDExecutedQuery selects, as one string column, the transactions
	// the server has executed.
	GTIDExecutedQuery() string
	// WaitForGTID selects one integer column: 0 once set has been applied,
	// non-zero when timeout passed first.
	WaitForGTID(set GTIDSet, timeout time.Duration) string
	// EnableSemiSync makes a primary wait for waitCount replica
	// acknowledgements (at most timeout before it falls back to
	// asynchronous), or makes a server a semi-sync replica: it
	// acknowledges and waits for nobody itself, which is also how a
	// primary's semi-sync is switched off. A replica's IO thread must
	// reconnect for its half to take effect; Server.EnableSemiSync does
	// that.
	EnableSemiSync(primary bool, waitCount int, timeout time.Duration) []string
	// BootstrapSQL is the init file that creates or updates users at every
	// server start: one statement per line, kept out of the binary log.
	BootstrapSQL(users []User) string
	// SetGTIDPosition declares that the server's data holds exactly set,
	// after a clone restored it; replication must be stopped.
	SetGTIDPosition(set GTIDSet) []string
}

// The two flavours Mysos supports.
var (
	MariaDB Flavor = mariadbFlavor{}
	MySQL8  Flavor = mysql8Flavor{}
)

// FlavorByName returns the flavour named "mariadb" or "mysql".
func FlavorByName(name string) (Flavor, error) {
	switch name {
	case flavorMariaDB:
		return MariaDB, nil
	case flavorMySQL:
		return MySQL8, nil
	}
	return nil, fmt.Errorf("unknown MySQL flavor %q: want %q or %q", name, flavorMariaDB, flavorMySQL)
}

// ErrUnsupported marks a request the flavour cannot carry out, such as
// waiting for two semi-sync acknowledgements on MariaDB.
var ErrUnsupported = errors.New("not supported by this flavor")

// CheckSemiSyncWaitCount reports whether a primary of flavour f can wait
// for n replica acknowledgements, so a cluster spec can be refused up front.
// MariaDB always waits for exactly one.
func CheckSemiSyncWaitCount(f Flavor, n int) error {
	if n < 1 {
		return fmt.Errorf("semi-sync wait count %d: must be at least 1", n)
	}
	if c, ok := f.(semiSyncLimiter); ok && n > c.maxSemiSyncWaitCount() {
		return fmt.Errorf("semi-sync wait count %d: %s waits for at most %d acknowledgement(s): %w",
			n, f.Name(), c.maxSemiSyncWaitCount(), ErrUnsupported)
	}
	return nil
}

// semiSyncLimiter is implemented by flavours with a fixed wait count.
type semiSyncLimiter interface {
	maxSemiSyncWaitCount() int
}

// Source is the server a replica replicates from, and the account it uses
// there.
type Source struct {
	Host     string
	Port     int
	User     string
	Password string
	// TLS encrypts the replication connection. With CAFile, a CA bundle on
	// the replica's host, the source's certificate must chain to it and
	// name Host; without, the connection is encrypted but the source is
	// not verified (only while a cluster moves to TLS, see docs/security.md).
	// Without TLS, CAFile is ignored and TLS is switched off explicitly:
	// CHANGE MASTER keeps the earlier settings of every option it is not
	// given.
	TLS    bool
	CAFile string
}

// sourceTLS is the TLS part of a CHANGE MASTER / CHANGE REPLICATION SOURCE
// statement, its options prefixed with MASTER or SOURCE.
func sourceTLS(prefix string, src Source) string {
	ssl, ca, verify := 0, "", 0
	if src.TLS {
		ssl, ca = 1, src.CAFile
		if ca != "" {
			verify = 1
		}
	}
	return fmt.Sprintf("%[1]s_SSL=%[2]d, %[1]s_SSL_CA=%[3]s, %[1]s_SSL_VERIFY_SERVER_CERT=%[4]d", prefix, ssl, quoteString(ca), verify)
}

// millis is d in whole milliseconds, at least 1: both flavours take the
// semi-sync timeout in milliseconds, and 0 would mean "never wait".
func millis(d time.Duration) int64 {
	return max(d.Milliseconds(), 1)
}

// seconds formats d for MASTER_GTID_WAIT and WAIT_FOR_EXECUTED_GTID_SET,
// which take fractional seconds.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", max(d, 0).Seconds())
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}
