package mysql

import (
	"fmt"
	"time"
)

// mysql8Flavor is MySQL 8.0.23 or later: uuid:interval GTID sets, the
// REPLICA/SOURCE statements, semi-sync from plugins.
//
// It cannot be run against a real server on Mysos' build machines (only
// MariaDB is installable there), so its statements are checked by unit
// tests only. Statements removed in 8.4 are noted where used.
type mysql8Flavor struct{}

func (mysql8Flavor) Name() string { return flavorMySQL }

func (mysql8Flavor) ParseGTIDSet(s string) (GTIDSet, error) { return parseMySQLSet(s) }

// ChangeSource uses auto-positioning (the source sends what gtid_executed
// lacks). GET_SOURCE_PUBLIC_KEY=1 lets the replication account use the
// default caching_sha2_password over a connection without TLS.
// TLS is always stated (SOURCE_SSL, SOURCE_SSL_CA,
// SOURCE_SSL_VERIFY_SERVER_CERT), on or off, as for MariaDB.
func (mysql8Flavor) ChangeSource(src Source) []string {
	return []string{fmt.Sprintf(
		"CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%d, SOURCE_USER=%s, SOURCE_PASSWORD=%s, "+
			"SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1, %s",
		quoteString(src.Host), src.Port, quoteString(src.User), quoteString(src.Password), sourceTLS("SOURCE", src))}
}

func (mysql8Flavor) StartReplica() string    { return "START REPLICA" }
func (mysql8Flavor) StopReplica() string     { return "STOP REPLICA" }
func (mysql8Flavor) StopReplicaIO() string   { return "STOP REPLICA IO_THREAD" }
func (mysql8Flavor) ResetReplicaAll() string { return "RESET REPLICA ALL" }

// SetReadOnly uses super_read_only, which fences SUPER accounts too. The
// two variables are coupled (super_read_only=ON implies read_only=ON,
// read_only=OFF clears super_read_only); setting both, one step at a time
// along writable → read_only → super_read_only, states the intent instead of
// relying on the coupling, and never passes through a state where SUPER
// accounts are fenced but others are not.
func (mysql8Flavor) SetReadOnly(on bool) []string {
	if on {
		return []string{"SET GLOBAL read_only=ON", "SET GLOBAL super_read_only=ON"}
	}
	return []string{"SET GLOBAL super_read_only=OFF", "SET GLOBAL read_only=OFF"}
}

func (mysql8Flavor) GTIDExecutedQuery() string { return "SELECT @@GLOBAL.gtid_executed" }

// WaitForGTID uses WAIT_FOR_EXECUTED_GTID_SET, which waits on gtid_executed
// and so works on a primary too. It returns 0, or 1 on timeout.
func (mysql8Flavor) WaitForGTID(set GTIDSet, timeout time.Duration) string {
	return fmt.Sprintf("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", quoteString(set.String()), seconds(timeout))
}

// EnableSemiSync sets the variables of the semisync_source and
// semisync_replica plugins (MySQL 8.0.26 names; the older semisync_master /
// semisync_slave plugins have rpl_semi_sync_master_* variables instead).
// SET GLOBAL fails for a plugin that is not loaded, so every server must
// load both at start (plugin_load_add in my.cnf): roles change at failover.
// The wait point is AFTER_SYNC, and the roles switch the halves as for
// MariaDB (see mariadbFlavor.EnableSemiSync).
func (mysql8Flavor) EnableSemiSync(primary bool, waitCount int, timeout time.Duration) []string {
	if !primary {
		return []string{
			"SET GLOBAL rpl_semi_sync_source_enabled=OFF",
			"SET GLOBAL rpl_semi_sync_replica_enabled=ON",
		}
	}
	return []string{
		"SET GLOBAL rpl_semi_sync_source_wait_point=AFTER_SYNC",
		fmt.Sprintf("SET GLOBAL rpl_semi_sync_source_timeout=%d", millis(timeout)),
		fmt.Sprintf("SET GLOBAL rpl_semi_sync_source_wait_for_replica_count=%d", max(waitCount, 1)),
		"SET GLOBAL rpl_semi_sync_source_enabled=ON",
	}
}

func (mysql8Flavor) BootstrapSQL(users []User) string { return joinScript(bootstrapStatements(users)) }

// SetGTIDPosition: gtid_purged can only be set while gtid_executed is
// empty, hence RESET MASTER first (MySQL 8.4 removed it in favour of RESET
// BINARY LOGS AND GTIDS).
func (mysql8Flavor) SetGTIDPosition(set GTIDSet) []string {
	return []string{"RESET MASTER", "SET GLOBAL gtid_purged=" + quoteString(set.String())}
}

func (mysql8Flavor) replicaStatusQuery() string { return "SHOW REPLICA STATUS" }

// slavePosQuery: none; auto-position starts from gtid_executed.
func (mysql8Flavor) slavePosQuery() string { return "" }
