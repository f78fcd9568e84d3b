package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ReplicateFrom makes the server a replica of src: stop, change source,
// start. It is idempotent; calling it again with the same source briefly
// reconnects the replica.
//
// On MariaDB it first moves gtid_slave_pos up to gtid_binlog_pos wherever
// the binary log is ahead: on a former primary (its gtid_slave_pos is stale
// or empty) or a server with local writes. The replica then asks for what
// follows everything it executed, as MySQL's auto-position does, and a
// diverged server is refused by its source at once (error 1236, "the slave
// has diverged", shown in Status().Replica.LastIOError) instead of being
// sent the source's history from an old position and relying on the
// server_id filter (replicate_same_server_id=OFF) to skip its own
// transactions as they come back.
func (s *Server) ReplicateFrom(ctx context.Context, src Source) error {
	if src.Host == "" || src.Port <= 0 || src.Port > 65535 {
		return fmt.Errorf("mysql %s: replicate from %q port %d: want a host and a port", s.addr, src.Host, src.Port)
	}
	op := "replicate from " + net.JoinHostPort(src.Host, strconv.Itoa(src.Port))
	secrets := []string{src.Password}
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.withConn(ctx, op, func(c *sql.Conn) error {
		if err := s.stopReplica(ctx, c, op); err != nil {
			return err
		}
		if err := s.alignSlavePos(ctx, c, op); err != nil {
			return err
		}
		stmts := append(s.flavor.ChangeSource(src), s.flavor.StartReplica())
		return s.runOn(ctx, c, op, secrets, stmts...)
	})
}

// stopReplica stops both replication threads; a server that is no replica
// is fine.
func (s *Server) stopReplica(ctx context.Context, c *sql.Conn, op string) error {
	err := s.runOn(ctx, c, op, nil, s.flavor.StopReplica())
	if isServerError(err, errNotReplica) {
		return nil
	}
	return err
}

// alignSlavePos: see ReplicateFrom. Replication must be stopped.
func (s *Server) alignSlavePos(ctx context.Context, c *sql.Conn, op string) error {
	q := s.dialect().slavePosQuery()
	if q == "" {
		return nil
	}
	binlog, err := s.querySet(ctx, c, s.flavor.GTIDExecutedQuery())
	if err != nil {
		return err
	}
	pos, err := s.querySet(ctx, c, q)
	if err != nil || pos.Contains(binlog) {
		return err
	}
	return s.runOn(ctx, c, op, nil, s.flavor.SetGTIDPosition(pos.Union(binlog))...)
}

// StopReplication stops both replication threads and keeps the source
// configured; a server that is no replica is fine.
func (s *Server) StopReplication(ctx context.Context) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.withConn(ctx, "stop replication", func(c *sql.Conn) error {
		return s.stopReplica(ctx, c, "stop replication")
	})
}

// StopReplicaIO stops fetching from the source; the applier goes on with
// what was fetched (Status().Replica.RetrievedGTID), which WaitForGTID can
// then wait for: the first step of a failover.
func (s *Server) StopReplicaIO(ctx context.Context) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.run(ctx, "stop replica IO thread", nil, s.flavor.StopReplicaIO())
}

// ResetReplication stops replication and forgets the source, as on
// promotion; afterwards Status().Replica is nil.
func (s *Server) ResetReplication(ctx context.Context) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	const op = "reset replication"
	return s.withConn(ctx, op, func(c *sql.Conn) error {
		if err := s.stopReplica(ctx, c, op); err != nil {
			return err
		}
		return s.runOn(ctx, c, op, nil, s.flavor.ResetReplicaAll())
	})
}

// SetReadOnly fences writes or opens the server to them; see the flavour's
// SetReadOnly for whom it fences.
func (s *Server) SetReadOnly(ctx context.Context, on bool) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.run(ctx, "set read_only="+onOff(on), nil, s.flavor.SetReadOnly(on)...)
}

// SetGTIDPosition declares the GTIDs a restored clone holds; see the
// flavour's SetGTIDPosition. Replication must be stopped.
func (s *Server) SetGTIDPosition(ctx context.Context, set GTIDSet) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.run(ctx, "set GTID position", nil, s.flavor.SetGTIDPosition(set)...)
}

// WaitForGTID returns once the server has applied set, or fails when ctx
// ends (WaitTimeout if ctx has no deadline). The server-side wait runs in
// slices of at most 10 s, well within IOTimeout, so a long wait never trips
// the connection's read timeout, and a cancelled caller leaves no wait
// running on the server for long. On MariaDB this waits for the replication threads, so it is for
// replicas (see the flavour's WaitForGTID).
func (s *Server) WaitForGTID(ctx context.Context, set GTIDSet) error {
	if set.IsEmpty() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, WaitTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	for {
		slice := min(time.Until(deadline), waitSlice)
		done, err := s.waitSlice(ctx, set, slice)
		if err != nil || done {
			return err
		}
		if ctx.Err() != nil || time.Until(deadline) <= 0 {
			return fmt.Errorf("mysql %s: wait for GTIDs %s: %w", s.addr, set, context.DeadlineExceeded)
		}
	}
}

// waitSlice waits up to d on the server; done reports whether set arrived.
func (s *Server) waitSlice(ctx context.Context, set GTIDSet, d time.Duration) (done bool, err error) {
	q := s.flavor.WaitForGTID(set, d)
	var res sql.NullInt64
	if err := s.db.QueryRowContext(ctx, q).Scan(&res); err != nil {
		return false, s.fail("wait for GTIDs "+set.String(), err)
	}
	if !res.Valid {
		return false, fmt.Errorf("mysql %s: %s returned NULL", s.addr, stmtKind(q))
	}
	return res.Int64 == 0, nil
}

// EnableSemiSync switches semi-synchronous replication on for the server's
// role. A primary waits for waitCount acknowledgements (MariaDB: exactly 1;
// a higher count is refused with ErrUnsupported rather than silently
// weakened), at most timeout, before it falls back to asynchronous. A
// replica's running IO thread is restarted, since it negotiates semi-sync
// only when it connects.
func (s *Server) EnableSemiSync(ctx context.Context, primary bool, waitCount int, timeout time.Duration) error {
	op := "enable semi-sync"
	if primary {
		if err := CheckSemiSyncWaitCount(s.flavor, waitCount); err != nil {
			return fmt.Errorf("mysql %s: %s: %w", s.addr, op, err)
		}
		if timeout <= 0 {
			return fmt.Errorf("mysql %s: %s: timeout %s: must be positive", s.addr, op, timeout)
		}
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	return s.withConn(ctx, op, func(c *sql.Conn) error {
		if err := s.runOn(ctx, c, op, nil, s.flavor.EnableSemiSync(primary, waitCount, timeout)...); err != nil {
			return err
		}
		if primary {
			return nil
		}
		_, io, err := s.replica(ctx, c)
		if err != nil || io == "" || io == "No" {
			return err
		}
		return s.runOn(ctx, c, op, nil, s.flavor.StopReplicaIO(), s.flavor.StartReplica())
	})
}

// ApplyUsers runs the flavour's BootstrapSQL for users now, on a running
// server: new accounts, rotated passwords and changed privileges take
// effect without a restart. The statements run on one connection, which
// is then discarded because the script turned its binary logging off.
func (s *Server) ApplyUsers(ctx context.Context, users []User) error {
	var secrets []string
	for _, u := range users {
		secrets = append(secrets, u.Password)
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return s.fail("apply users", err)
	}
	defer c.Close()
	defer discard(c)
	return s.runOn(ctx, c, "apply users", secrets, splitScript(s.flavor.BootstrapSQL(users))...)
}

// discard makes database/sql drop c instead of returning it to the pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return errBadConn })
}

// KillConnections disconnects every client session except this one and
// those of exceptUsers, e.g. when a primary is demoted, so that
// applications reconnect to the new primary instead of writing to the old
// one. Server threads and replication (binary log dump) connections are
// left alone: killing them would only make replicas reconnect.
//
// Sessions waiting for a semi-sync acknowledgement are killed last, in a
// second pass. With the AFTER_SYNC wait point and binary log group commit,
// only a group's leader waits for the acknowledgement; the sessions whose
// commits joined its group, or queued behind it, wait for that leader.
// Killing the leader ends its wait (its own client gets an error), and its
// group commits, then every group behind whose leader is killed too: a
// session among them that is still connected is told OK for a commit no
// replica acknowledged. So every other session is disconnected first.
// That is not enough while new writes can still arrive (a client that
// reconnects may join a queued group between the two passes): to take
// writes away from a server whose commits may wait for acknowledgements
// that cannot come, StartReadOnly first.
func (s *Server) KillConnections(ctx context.Context, exceptUsers ...string) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	const op = "kill connections"
	return s.withConn(ctx, op, func(c *sql.Conn) error {
		var errs []error
		for _, lastPass := range []bool{false, true} {
			sessions, err := s.victims(ctx, c, exceptUsers)
			if err != nil {
				return err
			}
			for _, v := range sessions {
				if v.awaitingAck && !lastPass {
					continue
				}
				err := s.runOn(ctx, c, op, nil, fmt.Sprintf("KILL CONNECTION %d", v.id))
				if err != nil && !isServerError(err, errNoSuchThread) {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	})
}

// victim is a session KillConnections ends.
type victim struct {
	id          int64
	awaitingAck bool // its commit waits for a semi-sync acknowledgement
}

// victims lists the sessions KillConnections ends.
func (s *Server) victims(ctx context.Context, c *sql.Conn, exceptUsers []string) ([]victim, error) {
	const q = "SELECT ID, USER, COMMAND, STATE, ID = CONNECTION_ID() FROM information_schema.PROCESSLIST"
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, s.fail("list connections", err)
	}
	defer rows.Close()
	spared := map[string]bool{"system user": true, "event_scheduler": true}
	for _, u := range exceptUsers {
		spared[u] = true
	}
	var out []victim
	for rows.Next() {
		var id int64
		var user, command, state sql.NullString
		var self bool
		if err := rows.Scan(&id, &user, &command, &state, &self); err != nil {
			return nil, s.fail("list connections", err)
		}
		if self || spared[user.String] || !isClientCommand(command.String) {
			continue
		}
		out = append(out, victim{id: id, awaitingAck: awaitsAck(state.String)})
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list connections", err)
	}
	return out, nil
}

// awaitsAck: the PROCESSLIST state of a session whose commit waits for a
// semi-sync acknowledgement (MariaDB: "... from slave"; MySQL 8.0.26+:
// "... from replica").
func awaitsAck(state string) bool { return strings.HasPrefix(state, "Waiting for semi-sync ACK") }

// ReadOnlyBarrier is a SET GLOBAL read_only=ON under way (StartReadOnly).
type ReadOnlyBarrier struct {
	done chan struct{}
	err  error
}

// Wait returns once read_only took effect (nil), the statement failed, or
// ctx ended (then the statement goes on, holding new writes back, until
// the ctx StartReadOnly was given ends).
func (b *ReadOnlyBarrier) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("read_only not in effect yet: %w", ctx.Err())
	}
}

// StartReadOnly sets read_only (the flavour's SetReadOnly) on a connection
// of its own and returns as soon as no new write can enter the server's
// commit pipeline: read_only took effect, or the statement waits for the
// commits in progress (state "Waiting for backup lock" on MariaDB, "...
// global read lock" or "... commit lock" on MySQL), and while it waits,
// every new write statement waits behind it, then fails. The commits in
// progress hold it back until they end; one waiting for a semi-sync
// acknowledgement that cannot come ends only when its session is killed
// (KillConnections). The statement runs until read_only takes effect, it
// fails, or ctx ends (the connection is closed, and MariaDB gives up a
// statement waiting for a lock once its client is gone); the barrier's
// Wait reports which.
func (s *Server) StartReadOnly(ctx context.Context) (*ReadOnlyBarrier, error) {
	const op = "start read_only"
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, s.fail(op, err)
	}
	var id int64
	if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		c.Close()
		return nil, s.fail(op, err)
	}
	b := &ReadOnlyBarrier{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer c.Close()
		run, cancel := opContext(ctx)
		defer cancel()
		b.err = s.runOn(run, c, "set read_only=ON", nil, s.flavor.SetReadOnly(true)...)
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-b.done:
			if b.err != nil {
				return nil, b.err
			}
			return b, nil
		case <-tick.C:
		}
		var state sql.NullString
		err := s.db.QueryRowContext(ctx, "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&state)
		switch {
		case err == nil && strings.Contains(state.String, "lock"):
			return b, nil
		case errors.Is(err, sql.ErrNoRows):
			// The statement ended between two looks: done says how.
		case err != nil:
			return nil, s.fail(op, err)
		}
	}
}

// isClientCommand: the PROCESSLIST commands of server threads and of
// replicas' binary log readers.
func isClientCommand(command string) bool {
	switch command {
	case "Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker":
		return false
	}
	return true
}
