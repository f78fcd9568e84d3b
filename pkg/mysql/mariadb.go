package mysql

import (
	"fmt"
	"time"
)

// mariadbFlavor is MariaDB 10.11: domain-server-seq GTID positions,
// CHANGE MASTER TO, semi-sync built into the server.
type mariadbFlavor struct{}

func (mariadbFlavor) Name() string { return flavorMariaDB }

func (mariadbFlavor) ParseGTIDSet(s string) (GTIDSet, error) { return parseMariaDBPos(s) }

// ChangeSource positions by gtid_slave_pos, the GTIDs this server applied as
// a replica. A server that wrote on its own as a primary has a stale or
// empty gtid_slave_pos; Server.ReplicateFrom moves it up to gtid_binlog_pos
// first, which gives MySQL's auto-position semantics (start after
// everything executed). MASTER_USE_GTID=current_pos would do that too, but
// only for GTIDs with this server's own server_id. MASTER_CONNECT_RETRY=1 (default 60) makes a replica
// find a restarted or new source within a second.
//
// TLS is always stated (MASTER_SSL, MASTER_SSL_CA,
// MASTER_SSL_VERIFY_SERVER_CERT), on or off: CHANGE MASTER keeps what it
// is not told, and newer MariaDB releases default to TLS with verification.
func (mariadbFlavor) ChangeSource(src Source) []string {
	return []string{fmt.Sprintf(
		"CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
			"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, %s",
		quoteString(src.Host), src.Port, quoteString(src.User), quoteString(src.Password), sourceTLS("MASTER", src))}
}

func (mariadbFlavor) StartReplica() string    { return "START SLAVE" }
func (mariadbFlavor) StopReplica() string     { return "STOP SLAVE" }
func (mariadbFlavor) StopReplicaIO() string   { return "STOP SLAVE IO_THREAD" }
func (mariadbFlavor) ResetReplicaAll() string { return "RESET SLAVE ALL" }

// SetReadOnly sets read_only only. MariaDB has no super_read_only: read_only
// does not stop accounts with SUPER or READ ONLY ADMIN (ALL PRIVILEGES
// includes them), so it fences application accounts, which must therefore
// never hold those privileges; Mysos' own admin can still write.
func (mariadbFlavor) SetReadOnly(on bool) []string {
	return []string{"SET GLOBAL read_only=" + onOff(on)}
}

// GTIDExecutedQuery reads gtid_binlog_pos: the last GTID per domain in this
// server's binary log. On a primary that is everything it executed; on a
// replica too, because Mysos runs replicas with log_slave_updates=ON, so
// every applied transaction is logged. gtid_slave_pos (applied by the
// replication threads only) misses a primary's own writes, and
// gtid_current_pos prefers the binary log only for GTIDs carrying this
// server's own server_id. Server.Status adds gtid_slave_pos to the result,
// which covers the one case the binary log misses: a clone restored with
// SetGTIDPosition that has not applied anything yet.
func (mariadbFlavor) GTIDExecutedQuery() string { return "SELECT @@GLOBAL.gtid_binlog_pos" }

// WaitForGTID uses MASTER_GTID_WAIT, which waits for the replication
// threads' gtid_slave_pos: it is for replicas. It returns 0, or -1 on
// timeout.
func (mariadbFlavor) WaitForGTID(set GTIDSet, timeout time.Duration) string {
	return fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %s)", quoteString(set.String()), seconds(timeout))
}

// EnableSemiSync sets the built-in rpl_semi_sync_* variables (no plugin
// since MariaDB 10.3.3). The wait point is AFTER_SYNC (the default
// AFTER_COMMIT lets other sessions see a transaction no replica has yet, so a
// failover could lose what clients already read). MariaDB has no
// wait-for-slave-count: a primary always waits for one acknowledgement, so
// waitCount is not part of the statements; CheckSemiSyncWaitCount and
// Server.EnableSemiSync refuse more than one.
//
// A replica switches the primary half off, so that a demoted primary stops
// waiting for acknowledgements (that is also how a primary's semi-sync is
// turned off). A primary keeps its replica half as it is (on, from Mysos'
// my.cnf): it costs nothing without an IO thread, and a primary demoted by
// a failover acknowledges as soon as it replicates, before anyone calls
// EnableSemiSync on it again; otherwise a two-server cluster would block.
func (mariadbFlavor) EnableSemiSync(primary bool, waitCount int, timeout time.Duration) []string {
	if !primary {
		return []string{
			"SET GLOBAL rpl_semi_sync_master_enabled=OFF",
			"SET GLOBAL rpl_semi_sync_slave_enabled=ON",
		}
	}
	return []string{
		"SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
		fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout=%d", millis(timeout)),
		"SET GLOBAL rpl_semi_sync_master_enabled=ON",
	}
}

func (mariadbFlavor) maxSemiSyncWaitCount() int { return 1 }

func (mariadbFlavor) BootstrapSQL(users []User) string { return joinScript(bootstrapStatements(users)) }

// SetGTIDPosition sets gtid_slave_pos, where a replica resumes. A restored
// backup's mysql.gtid_slave_pos table holds its source's old position, not
// the backup's, and an empty one would replay the source's binary log from
// the start (silently, with the default slave_ddl_exec_mode=IDEMPOTENT).
func (mariadbFlavor) SetGTIDPosition(set GTIDSet) []string {
	return []string{"SET GLOBAL gtid_slave_pos=" + quoteString(set.String())}
}

func (mariadbFlavor) replicaStatusQuery() string { return "SHOW SLAVE STATUS" }

func (mariadbFlavor) slavePosQuery() string { return "SELECT @@GLOBAL.gtid_slave_pos" }
