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
	// primary side of semi-sync turned off under them, or their group
	// committed when its leader was killed): acknowledged writes that no
	// replica has.
	waiting, leaked int

	// The sessions of clients (fakeClient) and the commit pipeline of a
	// primary whose commits no replica acknowledges, as MariaDB's binary
	// log group commit with the AFTER_SYNC wait point runs it: pipeline[0]
	// is the group whose leader (its first session) waits for the
	// acknowledgement; pipeline[1] is written, its leader waiting for the
	// first; the sessions committing after that queue in pipeline[2],
	// whose leader waits for the binary log. Killing the waiting leader
	// ends its wait, and its group commits, then every following group
	// whose leader was killed too: members whose sessions are still
	// connected are told OK.
	sessions    []*fakeSession // oldest first
	pipeline    [][]*fakeSession
	nextSession int
	clients     []*fakeClient
	// roPending: a SET GLOBAL read_only=ON waits for the pipeline to
	// drain; meanwhile new writes wait behind it, then fail.
	roPending bool

	// TLS: tlsCA is the server's ssl_ca ("" without TLS, and then a
	// client asking for TLS is refused); tlsRequired refuses clients
	// without it. srcTLS and srcCAFile are its replication settings.
	tlsCA       string
	tlsRequired bool
	srcTLS      bool
	srcCAFile   string
	// opens counts connections opened with (tlsOpens) and without TLS.
	opens, tlsOpens int
}

// fakeSession is one client connection.
type fakeSession struct {
	id     int
	client *fakeClient // nil once the client gave up on it
	killed bool
}

// fakeClient writes to one server one commit at a time through sessions
// of its own, as the e2e writers do. When its session is killed it is told
// an error, and after `after` more KILLs on the server (0: before the next
// one) reconnects and commits again; so does it, one KILL later, after a
// refused commit. acked counts the commits it was told OK.
type fakeClient struct {
	srv        *fakeServer
	after      int
	countdown  int // KILLs until it reconnects; <0: not waiting to
	session    *fakeSession
	acked      int
	ackedAlone int // of which no replica had (all, on a pipeline)
}

// newClient starts a client on s with a commit waiting in the pipeline.
func (s *fakeServer) newClient(after int) *fakeClient {
	c := &fakeClient{srv: s, after: after, countdown: -1}
	s.clients = append(s.clients, c)
	c.commit()
	return c
}

// staleCommits adds n commits to the pipeline whose clients already gave
// up (their own timeout), as a partitioned primary accumulates them.
func (s *fakeServer) staleCommits(n int) {
	for range n {
		sess := s.openSession(nil)
		s.enqueue(sess)
	}
}

func (s *fakeServer) openSession(c *fakeClient) *fakeSession {
	s.nextSession++
	sess := &fakeSession{id: s.nextSession, client: c}
	s.sessions = append(s.sessions, sess)
	return sess
}

// enqueue binlogs a commit of sess and queues it for an acknowledgement.
func (s *fakeServer) enqueue(sess *fakeSession) {
	s.binlog = append(s.binlog, txn{s.id, lastSeq(s.binlog) + 1})
	if len(s.pipeline) < 3 {
		s.pipeline = append(s.pipeline, []*fakeSession{sess})
		return
	}
	last := len(s.pipeline) - 1
	s.pipeline[last] = append(s.pipeline[last], sess)
}

// commit opens a session and commits on it: refused by a read-only server
// or behind a pending read_only, else queued for an acknowledgement (this
// model's pipeline is for a primary no replica acknowledges).
func (c *fakeClient) commit() {
	s := c.srv
	c.session, c.countdown = s.openSession(c), -1
	if s.readOnly || s.roPending || !s.semiSync {
		c.countdown = 1
		return
	}
	s.enqueue(c.session)
}

// kill is KILL CONNECTION: the session's client is told an error at once
// (MariaDB shuts the socket down before waking the thread); a killed
// leader waiting for an acknowledgement lets the pipeline move on; then
// the clients react.
func (s *fakeServer) kill(sess *fakeSession) {
	if !sess.killed {
		sess.killed = true
		if c := sess.client; c != nil && c.session == sess {
			c.countdown = c.after
		}
	}
	s.drain()
	for _, c := range s.clients {
		switch {
		case c.countdown > 0:
			c.countdown--
		case c.countdown == 0:
			c.commit()
		}
	}
}

// drain commits the groups at the head of the pipeline whose leaders no
// longer wait (killed): their members still connected are told OK,
// although no replica has their commits. Then a pending read_only takes
// effect once nothing is in progress.
func (s *fakeServer) drain() {
	for len(s.pipeline) > 0 && s.pipeline[0][0].killed {
		for _, m := range s.pipeline[0] {
			if !m.killed && m.client != nil && m.client.session == m {
				m.client.acked++
				m.client.ackedAlone++
				s.leaked++
				m.client.commit()
			}
		}
		s.pipeline = s.pipeline[1:]
	}
	if s.roPending && len(s.pipeline) == 0 && s.waiting == 0 {
		s.readOnly, s.roPending = true, false
	}
}

// releaseAll is the primary side of semi-sync turned off: every commit in
// progress is told OK.
func (s *fakeServer) releaseAll() {
	for _, g := range s.pipeline {
		for _, m := range g {
			m.killed = true // its leader no longer waits
		}
		for _, m := range g {
			if m.client != nil && m.client.session == m {
				m.client.acked++
				m.client.ackedAlone++
				s.leaked++
			}
		}
	}
	s.pipeline = nil
	s.drain()
}

// awaitingAck: the session PROCESSLIST shows "Waiting for semi-sync ACK".
func (s *fakeServer) awaitingAck(sess *fakeSession) bool {
	return len(s.pipeline) > 0 && s.pipeline[0][0] == sess
}

// live lists the sessions still there, newest first (PROCESSLIST order): a
// session is gone once killed and out of the pipeline, or replaced by its
// client's next.
func (s *fakeServer) live() []*fakeSession {
	inPipeline := map[*fakeSession]bool{}
	for _, g := range s.pipeline {
		for _, m := range g {
			inPipeline[m] = true
		}
	}
	var out []*fakeSession
	for i := len(s.sessions) - 1; i >= 0; i-- {
		m := s.sessions[i]
		current := m.client != nil && m.client.session == m
		if inPipeline[m] || !m.killed && current {
			out = append(out, m)
		}
	}
	return out
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
	return &fakeConn{f: f, addr: net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)), tls: len(ep.CA) > 0}, nil
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
		case src.tlsRequired && !s.srcTLS, s.srcTLS && src.tlsCA == "":
			s.io = "Connecting" // refused: TLS one way and not the other
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
	tls  bool // opened with a CA: TLS only
}

var errDown = errors.New("connection refused")

func (c *fakeConn) do(fn func(s *fakeServer) error) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	s := c.f.serverLocked(c.addr)
	if s.down {
		return fmt.Errorf("%s: %w", c.addr, errDown)
	}
	s.opens++
	switch {
	case c.tls && s.tlsCA == "":
		return fmt.Errorf("%s: TLS requested but the server does not support it", c.addr)
	case !c.tls && s.tlsRequired:
		return fmt.Errorf("%s: Access denied (require_secure_transport)", c.addr)
	case c.tls:
		s.tlsOpens++
	}
	return fn(s)
}

func (c *fakeConn) Status(context.Context) (mysql.Status, error) {
	var st mysql.Status
	err := c.do(func(s *fakeServer) error {
		st = mysql.Status{ReadOnly: s.readOnly, GTIDExecuted: position(s.binlog), ServerID: uint32(s.id), TLSCA: s.tlsCA}
		if s.source != "" {
			host, port, _ := net.SplitHostPort(s.source)
			p, _ := strconv.Atoi(port)
			st.Replica = &mysql.ReplicaStatus{SourceHost: host, SourcePort: p, IORunning: s.io == "Yes", IOThread: s.io,
				SQLRunning: s.sqlOn, LastIOErrno: s.ioErrno, RetrievedGTID: position(s.relay),
				TLS: s.srcTLS, TLSVerify: s.srcTLS && s.srcCAFile != "", TLSCAFile: s.srcCAFile}
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
// is killed. One that timed out is gone: MariaDB gives up a statement
// waiting for a lock once its client disconnects.
func (c *fakeConn) SetReadOnly(_ context.Context, on bool) error {
	return c.do(func(s *fakeServer) error {
		if on && !s.readOnly && (s.waiting > 0 || len(s.pipeline) > 0) {
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
		s.srcTLS, s.srcCAFile = src.TLS, ""
		if src.TLS {
			s.srcCAFile = src.CAFile
		}
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
			s.releaseAll()
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

// KillConnections is pkg/mysql's: KILL CONNECTION of every client session
// in PROCESSLIST order, the one waiting for a semi-sync acknowledgement
// spared by a first pass, then every session a second listing finds; the
// clients react between two KILLs.
func (c *fakeConn) KillConnections(context.Context, ...string) error {
	return c.do(func(s *fakeServer) error {
		s.kills, s.waiting = s.kills+1, 0
		for _, lastPass := range []bool{false, true} {
			for _, sess := range s.live() {
				if lastPass || !s.awaitingAck(sess) {
					s.kill(sess)
				}
			}
		}
		s.drain()
		return nil
	})
}

// StartReadOnly: read_only at once when nothing is in progress, else a
// pending statement that holds new writes back until the pipeline drains.
func (c *fakeConn) StartReadOnly(context.Context) (ReadOnlyBarrier, error) {
	err := c.do(func(s *fakeServer) error {
		if s.readOnly {
			return nil
		}
		s.roPending = true
		s.drain()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fakeBarrier{c}, nil
}

type fakeBarrier struct{ c *fakeConn }

func (b fakeBarrier) Wait(context.Context) error {
	return b.c.do(func(s *fakeServer) error {
		if !s.readOnly {
			return fmt.Errorf("read_only not in effect yet: %w", context.DeadlineExceeded)
		}
		return nil
	})
}

func (c *fakeConn) Close() error { return nil }
