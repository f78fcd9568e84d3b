package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mysos-project/mysos/pkg/mysql"
)

// fakeMySQL is a small model of MariaDB replication for the reconciler's
// tests, after MOCO's mock: each server has a binary log of transactions
// (domain 0, the writer's server id, a domain-wide sequence number), a
// relay log of what its IO thread fetched, and the states Mysos reads and
// sets. Replication moves only when the test calls pump, so every
// interleaving is the test's choice.
type fakeMySQL struct {
	mu      sync.Mutex
	servers map[string]*fakeServer // by host:port
}

type txn struct{ server, seq int }

type fakeServer struct {
	id        int
	down      bool
	readOnly  bool
	binlog    []txn // applied
	relay     []txn // fetched: binlog plus what waits to be applied
	source    string
	io        string // Yes, Connecting, No
	sqlOn     bool
	ioErrno   int
	semiSync  bool
	waitCount int
	databases []string
	kills     int
	stuck     bool // the applier does not apply (WaitForGTID times out)
	// openedBare: made writable with data and without the primary side of
	// semi-sync while the cluster has replicas: its next commits could be
	// acknowledged without a replica.
	openedBare bool
	// waiting counts commits whose clients wait for a semi-sync
	// acknowledgement; leaked counts those released without one (the
	// primary side of semi-sync turned off under them): acknowledged
	// writes that no replica has.
	waiting, leaked int
}

// restart is mysqld coming back after a crash or a relaunch: read-only,
// the primary side of semi-sync off, replication configured but not
// started (skip_slave_start).
func (s *fakeServer) restart() {
	s.down, s.readOnly, s.semiSync, s.waitCount = false, true, false, 0
	if s.source != "" {
		s.io, s.sqlOn = "No", false
	}
}

func newFakeMySQL() *fakeMySQL { return &fakeMySQL{servers: map[string]*fakeServer{}} }

// server returns the server at addr, created (empty, read-only, as mysqld
// boots) on first use.
func (f *fakeMySQL) server(addr string) *fakeServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serverLocked(addr)
}

func (f *fakeMySQL) serverLocked(addr string) *fakeServer {
	s, ok := f.servers[addr]
	if !ok {
		s = &fakeServer{id: len(f.servers) + 1, readOnly: true}
		f.servers[addr] = s
	}
	return s
}

func (f *fakeMySQL) Open(ep mysql.Endpoint, _ string) (Server, error) {
	return &fakeConn{f: f, addr: net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))}, nil
}

// write commits n transactions on the server at addr, as a client would.
func (f *fakeMySQL) write(addr string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.serverLocked(addr)
	if s.down || s.readOnly {
		return fmt.Errorf("%s refuses writes (down %v, read-only %v)", addr, s.down, s.readOnly)
	}
	for range n {
		s.binlog = append(s.binlog, txn{s.id, lastSeq(s.binlog) + 1})
	}
	s.relay = slices.Clone(s.binlog)
	return nil
}

// pump runs the replication threads of the given servers (all when none
// are named) once: fetch what the source has, apply what was fetched.
func (f *fakeMySQL) pump(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, s := range f.servers {
		if len(addrs) > 0 && !slices.Contains(addrs, addr) || s.down || s.source == "" || s.io == "No" {
			continue
		}
		src := f.servers[s.source]
		switch {
		case src == nil || src.down:
			s.io = "Connecting"
		case !isPrefix(s.binlog, src.binlog):
			s.io, s.ioErrno = "No", errDiverged
		default:
			s.io, s.relay = "Yes", slices.Clone(src.binlog)
		}
		// A replica with the primary side of semi-sync on waits for
		// acknowledgements of its own binlogged commits: its applier
		// stalls, as MariaDB's does.
		if s.sqlOn && !s.stuck && !s.semiSync {
			s.binlog = slices.Clone(s.relay)
		}
	}
}

func isPrefix(a, b []txn) bool { return len(a) <= len(b) && slices.Equal(a, b[:len(a)]) }

func lastSeq(log []txn) int {
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1].seq
}

func position(log []txn) mysql.GTIDSet {
	if len(log) == 0 {
		return mysql.GTIDSet{}
	}
	last := log[len(log)-1]
	set, err := mysql.ParseGTIDSet("mariadb", fmt.Sprintf("0-%d-%d", last.server, last.seq))
	if err != nil {
		panic(err)
	}
	return set
}

// fakeConn is one connection to a fake server; every call fails while the
// server is down.
type fakeConn struct {
	f    *fakeMySQL
	addr string
}

var errDown = errors.New("connection refused")

func (c *fakeConn) do(fn func(s *fakeServer) error) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	s := c.f.serverLocked(c.addr)
	if s.down {
		return fmt.Errorf("%s: %w", c.addr, errDown)
	}
	return fn(s)
}

func (c *fakeConn) Status(context.Context) (mysql.Status, error) {
	var st mysql.Status
	err := c.do(func(s *fakeServer) error {
		st = mysql.Status{ReadOnly: s.readOnly, GTIDExecuted: position(s.binlog), ServerID: uint32(s.id)}
		if s.source != "" {
			host, port, _ := net.SplitHostPort(s.source)
			p, _ := strconv.Atoi(port)
			st.Replica = &mysql.ReplicaStatus{SourceHost: host, SourcePort: p, IORunning: s.io == "Yes", IOThread: s.io,
				SQLRunning: s.sqlOn, LastIOErrno: s.ioErrno, RetrievedGTID: position(s.relay)}
			if s.ioErrno != 0 {
				st.Replica.LastIOError = "Got fatal error 1236 from master: diverged"
			}
		}
		return nil
	})
	return st, err
}

// SetReadOnly waits, as MariaDB's does, for commits in progress: one
// waiting for a semi-sync acknowledgement holds it back until its session
// is killed.
func (c *fakeConn) SetReadOnly(_ context.Context, on bool) error {
	return c.do(func(s *fakeServer) error {
		if on && !s.readOnly && s.waiting > 0 {
			return fmt.Errorf("set read_only: %w", context.DeadlineExceeded)
		}
		if !on && s.readOnly && !s.semiSync && len(s.binlog) > 0 {
			s.openedBare = true
		}
		s.readOnly = on
		return nil
	})
}

func (c *fakeConn) ReplicateFrom(_ context.Context, src mysql.Source) error {
	return c.do(func(s *fakeServer) error {
		s.source, s.io, s.sqlOn, s.ioErrno = net.JoinHostPort(src.Host, strconv.Itoa(src.Port)), "Yes", true, 0
		return nil
	})
}

func (c *fakeConn) ResetReplication(context.Context) error {
	return c.do(func(s *fakeServer) error {
		s.source, s.io, s.sqlOn, s.ioErrno, s.relay = "", "", false, 0, slices.Clone(s.binlog)
		return nil
	})
}

func (c *fakeConn) EnableSemiSync(_ context.Context, primary bool, count int, _ time.Duration) error {
	return c.do(func(s *fakeServer) error {
		if primary {
			s.waitCount = count
		}
		if s.semiSync && !primary {
			s.leaked += s.waiting
			s.waiting = 0
		}
		s.semiSync = primary
		return nil
	})
}

func (c *fakeConn) SemiSyncPrimary(context.Context) (bool, int, error) {
	var on bool
	var count int
	err := c.do(func(s *fakeServer) error { on, count = s.semiSync, s.waitCount; return nil })
	return on, count, err
}

func (c *fakeConn) Databases(context.Context) ([]string, error) {
	var dbs []string
	err := c.do(func(s *fakeServer) error { dbs = slices.Clone(s.databases); return nil })
	return dbs, err
}

func (c *fakeConn) CreateDatabase(_ context.Context, name string) error {
	return c.do(func(s *fakeServer) error { s.databases = append(s.databases, name); return nil })
}

func (c *fakeConn) StopReplicaIO(context.Context) error {
	return c.do(func(s *fakeServer) error {
		if s.source != "" {
			s.io = "No"
		}
		return nil
	})
}

func (c *fakeConn) WaitForGTID(_ context.Context, set mysql.GTIDSet) error {
	return c.do(func(s *fakeServer) error {
		if !s.stuck && s.sqlOn {
			s.binlog = slices.Clone(s.relay)
		}
		if !position(s.binlog).Contains(set) {
			return fmt.Errorf("wait for %s: %w", set, context.DeadlineExceeded)
		}
		return nil
	})
}

func (c *fakeConn) KillConnections(context.Context, ...string) error {
	return c.do(func(s *fakeServer) error { s.kills, s.waiting = s.kills+1, 0; return nil })
}

func (c *fakeConn) Close() error { return nil }
