package executor

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// Archiver settings.
const (
	defaultSegmentSeconds = 300
	defaultSegmentBytes   = 64 << 20
	// archiverConnectTimeout bounds Start: a source that cannot be reached
	// by then fails the task, and the reconciler relaunches it.
	archiverConnectTimeout = 30 * time.Second
	// The source sends a heartbeat when it has sent nothing for
	// heartbeatPeriod; a connection silent for readTimeout is dead.
	heartbeatPeriod = 2 * time.Second
	readTimeout     = 5 * heartbeatPeriod
	dialTimeout     = 5 * time.Second
	maxBackoff      = 30 * time.Second
	// errGTIDNotInBinlog: the source cannot send from the position asked
	// (ER_MASTER_FATAL_ERROR_READING_BINLOG).
	errGTIDNotInBinlog = 1236
)

// archiver is the "binlog-archiver" workload: it streams a member's binary
// log as a replica does, by GTID, and stores it in segments of whole
// transactions in the archive (see pkg/backup), until it is stopped. It
// resumes where the archive ends, so a restart, or a relaunch against
// another member after a failover, continues with neither gap nor
// duplicate. It never acknowledges semi-sync: a primary never waits for it.
type archiver struct {
	spec     *taskspec.Archiver
	file     string // the open segment, in the sandbox
	maxAge   time.Duration
	maxBytes int64
	log      *slog.Logger

	// Set by Start, then the run goroutine's.
	target backup.Target
	pos    mysql.GTIDSet // after the last whole transaction received
	format *binlogFormat // the source's Format_description event
	seg    *segment      // nil when no transaction is buffered
	scan   txnScanner

	cancel context.CancelFunc
	grace  chan time.Duration // Stop's grace, to the run goroutine
	ending
	once sync.Once

	mu      sync.Mutex // guards problem, and a.pos's writes
	problem error      // why the archive is not keeping up, for Healthy
}

// NewArchiver is the Factory of the "binlog-archiver" workload.
func NewArchiver(task mesos.TaskInfo, sandbox string) (Workload, error) {
	d, err := taskspec.Parse(task.Data)
	if err != nil {
		return nil, err
	}
	s := d.Archiver
	if s == nil {
		return nil, errors.New(`task data for the binlog-archiver workload lacks "archiver"`)
	}
	if s.Flavor != "mariadb" {
		return nil, fmt.Errorf("the binlog archiver streams MariaDB only, not %q", s.Flavor)
	}
	if err := backup.ValidCluster(s.Namespace, s.Cluster); err != nil {
		return nil, err
	}
	a := &archiver{spec: s, file: filepath.Join(sandbox, "binlog-segment"), maxAge: defaultSegmentSeconds * time.Second,
		maxBytes: defaultSegmentBytes, grace: make(chan time.Duration, 1), ending: newEnding(),
		log: slog.Default().With("workload", taskspec.WorkloadArchiver, "cluster", s.Namespace+"/"+s.Cluster, "source", s.Instance)}
	if s.SegmentSeconds > 0 {
		a.maxAge = time.Duration(s.SegmentSeconds) * time.Second
	}
	if s.SegmentBytes > 0 {
		a.maxBytes = s.SegmentBytes
	}
	return a, nil
}

// Start finds where the archive ends and connects to the source from
// there; it fails if the source cannot be reached within
// archiverConnectTimeout. Streaming then runs until Stop.
func (a *archiver) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, archiverConnectTimeout)
	defer cancel()
	if err := a.open(ctx); err != nil {
		return fmt.Errorf("binlog archiver of %s: %w", a.spec.Cluster, err)
	}
	conn, err := a.connectWithin(ctx)
	if err != nil {
		a.target.Close()
		return fmt.Errorf("binlog archiver of %s: stream from %s (%s:%d): %w", a.spec.Cluster, a.spec.Instance, a.spec.Source.Host, a.spec.Source.Port, err)
	}
	runCtx, runCancel := context.WithCancel(context.Background())
	a.cancel = runCancel
	go a.run(runCtx, conn)
	return nil
}

// open opens the target and reads where the archive ends.
func (a *archiver) open(ctx context.Context) error {
	s := a.spec
	target, err := backup.OpenTarget(s.Target.URL, backup.Options{HadoopUser: s.Target.HadoopUser})
	if err != nil {
		return err
	}
	a.target = target
	last, ok, err := backup.LastSegment(ctx, target, s.Namespace, s.Cluster, s.ClusterUID)
	if err == nil && ok {
		a.pos, err = mysql.MariaDB.ParseGTIDSet(last.End)
	}
	if err != nil {
		target.Close()
		return fmt.Errorf("read the end of the archive in %s: %w", s.Target.URL, err)
	}
	a.log.Info("binlog archiver starts", "from", a.pos.String(), "target", s.Target.URL)
	return nil
}

// connectWithin connects, retrying until ctx ends.
func (a *archiver) connectWithin(ctx context.Context) (*binlogConn, error) {
	for backoff := time.Second; ; backoff = min(2*backoff, maxBackoff) {
		conn, err := a.connect()
		if err == nil {
			return conn, nil
		}
		if sleep(ctx, backoff) != nil {
			return nil, err
		}
	}
}

// binlogConn is one replication connection to the source.
type binlogConn struct {
	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
}

// connect asks the source for its binary log after a.pos.
func (a *archiver) connect() (*binlogConn, error) {
	s := a.spec
	set, err := gmysql.ParseMariadbGTIDSet(a.pos.String())
	if err != nil {
		return nil, err
	}
	// A source serving TLS is streamed from over TLS only, verified.
	var tlsConfig *tls.Config
	if s.Source.CA != "" {
		if tlsConfig, err = mysql.TLSConfig([]byte(s.Source.CA), s.Source.Host); err != nil {
			return nil, err
		}
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.ServerID, Flavor: gmysql.MariaDBFlavor, Host: s.Source.Host, Port: uint16(s.Source.Port),
		User: s.User, Password: s.Password, Localhost: "mysos-binlog-archiver",
		// Never a semi-sync acknowledgement; raw events, checked, with the
		// statements annotating row events (mariadb-binlog shows them).
		SemiSyncEnabled: false, RawModeEnabled: true, VerifyChecksum: true,
		DumpCommandFlag: replication.BINLOG_SEND_ANNOTATE_ROWS_EVENT,
		HeartbeatPeriod: heartbeatPeriod, ReadTimeout: readTimeout,
		// The archiver reconnects itself, from the last whole transaction.
		DisableRetrySync: true,
		Dialer:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSConfig:        tlsConfig,
		// The archiver logs every failure itself, and the library's
		// errors print stack traces.
		Logger: slog.New(slog.DiscardHandler),
	})
	streamer, err := syncer.StartSyncGTID(set)
	if err != nil {
		syncer.Close()
		return nil, err
	}
	return &binlogConn{syncer: syncer, streamer: streamer}, nil
}

// run streams until ctx ends, reconnecting with backoff when the
// connection breaks, then stores what it can within Stop's grace.
func (a *archiver) run(ctx context.Context, conn *binlogConn) {
	backoff := time.Second
	for {
		received, err := a.stream(ctx, conn)
		if ctx.Err() != nil {
			break
		}
		closeConn(conn, dialTimeout)
		if received {
			backoff = time.Second
		}
		a.setProblem(fmt.Errorf("streaming from %s broke: %w", a.spec.Instance, err))
		a.log.Warn("streaming broke; reconnecting", "err", err.Error(), "in", backoff)
		a.afterBreak(ctx, err)
		if conn = a.reconnect(ctx, &backoff); conn == nil {
			break
		}
	}
	deadline := time.Now().Add(max(<-a.grace, time.Second))
	if err := a.flush(conn, deadline); err != nil {
		a.log.Warn("the segment in progress is not archived: the next archiver streams it again", "err", err.Error())
	}
	closeConn(conn, time.Until(deadline))
	a.target.Close()
	a.dropSegment()
	a.end(nil)
}

// reconnect retries until connected or ctx ends (nil then).
func (a *archiver) reconnect(ctx context.Context, backoff *time.Duration) *binlogConn {
	for {
		if sleep(ctx, *backoff) != nil {
			return nil
		}
		*backoff = min(2**backoff, maxBackoff)
		conn, err := a.connect()
		if err == nil {
			return conn
		}
		a.setProblem(fmt.Errorf("cannot stream from %s: %w", a.spec.Instance, err))
		a.log.Warn("cannot reconnect", "err", err.Error(), "retry in", *backoff)
	}
}

// stream handles the connection's events until it breaks or ctx ends;
// received tells whether anything came.
func (a *archiver) stream(ctx context.Context, conn *binlogConn) (received bool, err error) {
	for {
		ev, err := conn.streamer.GetEvent(ctx)
		if err != nil {
			return received, err
		}
		if !received {
			received = true
			a.setProblem(nil)
		}
		if err := a.handle(ctx, ev); err != nil {
			return received, err
		}
	}
}

// handle adds ev to the open segment if it belongs to a transaction, and
// stores the segment once it is due and its last transaction whole. The
// source's heartbeats make that check happen when it is idle too.
func (a *archiver) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	role, err := a.scan.scan(ev)
	if err != nil {
		return fmt.Errorf("%s event at %d: %w", ev.Header.EventType, ev.Header.LogPos, err)
	}
	switch role {
	case formatDescription:
		err = a.setFormat(ctx, ev)
	case txnBegin:
		err = a.begin(ev)
	case txnBody:
		err = a.seg.write(ev.RawData)
	case txnEnd:
		if err = a.seg.write(ev.RawData); err == nil {
			a.commit()
		}
	}
	if err != nil || a.scan.in || !a.seg.due(a.maxAge, a.maxBytes) {
		return err
	}
	return a.store(ctx)
}

// setFormat takes the source's Format_description event, which the
// segments start with. One of another format (a new server version, say)
// closes the open segment first.
func (a *archiver) setFormat(ctx context.Context, ev *replication.BinlogEvent) error {
	f, err := newBinlogFormat(ev)
	if err != nil {
		return err
	}
	a.seg.discardPartial() // a transaction cut by a restart of the source
	if a.seg != nil && !a.seg.format.same(f) {
		if err := a.store(ctx); err != nil {
			return err
		}
	}
	a.format = f
	return nil
}

// begin starts a transaction, opening a segment if none is.
func (a *archiver) begin(ev *replication.BinlogEvent) error {
	if a.seg != nil && a.seg.inTxn() {
		// A GTID event always starts a new group: the last one is whole.
		a.log.Warn("a transaction ended without a recognised end event", "gtid", a.seg.cur.String())
		a.commit()
	}
	// A source sends what follows the position asked for; anything else
	// is another history, which must not continue the archive.
	if later, err := after(a.scan.gtid, a.pos); err != nil {
		return err
	} else if !later {
		return fmt.Errorf("the source sent %s, which the archive's end %s holds already", a.scan.gtid, a.pos)
	}
	if a.seg == nil {
		if a.format == nil {
			return errors.New("a transaction before any Format_description event")
		}
		seg, err := newSegment(a.file, a.format, a.segmentStart())
		if err != nil {
			return err
		}
		a.seg = seg
	}
	return a.seg.begin(ev.RawData, a.scan.gtid, a.scan.time)
}

// segmentStart is where a segment beginning with the transaction just
// begun starts: a.pos, except for the first segment of an archive, which
// asked for the source's whole history. A source's binary log may begin
// after its history does (a replica seeded from a dump logs only what it
// applied since): the segment then starts right before its first
// transaction, so that a restore from an older backup is refused as a gap
// rather than replayed with transactions missing. (Domain 0 alone, as
// Mysos runs MariaDB.)
func (a *archiver) segmentStart() mysql.GTIDSet {
	g := a.scan.gtid
	if !a.pos.IsEmpty() || g.seq <= 1 {
		return a.pos
	}
	start := gtid{domain: g.domain, server: g.server, seq: g.seq - 1}.position()
	a.log.Warn("the source's binary log begins after its first transaction: the archive starts there", "position", start.String())
	return start
}

func (a *archiver) commit() {
	a.seg.commit()
	a.mu.Lock() // the run goroutine alone writes a.pos
	a.pos = a.pos.Union(a.seg.last.position())
	a.mu.Unlock()
}

// received is the position after the last whole transaction received.
func (a *archiver) received() mysql.GTIDSet {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pos
}

// afterBreak drops the transaction the break cut, stores the whole ones
// (the break may be a failover), and handles a source that cannot send
// from the archive's end.
func (a *archiver) afterBreak(ctx context.Context, err error) {
	a.seg.discardPartial()
	a.scan.in = false
	if err := a.store(ctx); err != nil {
		return
	}
	var me *gmysql.MyError
	if errors.As(err, &me) && me.Code == errGTIDNotInBinlog {
		if err := a.resumeAfterPurge(ctx); err != nil {
			a.log.Warn("the source cannot send the archive's continuation", "err", err.Error())
		}
	}
}

// resumeAfterPurge handles a source that refused to send from a.pos. If
// its binary log is past a.pos, the binary logs after a.pos were purged:
// archiving resumes where its oldest remaining binary log begins (every
// transaction it still has is archived), and a restore from a backup older
// than that will be refused as a gap. Otherwise the source has not reached
// a.pos yet (a lagging replica), and the archiver waits for it.
func (a *archiver) resumeAfterPurge(ctx context.Context) error {
	src, err := mysql.Open(mysql.Endpoint{Host: a.spec.Source.Host, Port: a.spec.Source.Port, User: a.spec.User, Password: a.spec.Password,
		CA: []byte(a.spec.Source.CA)}, mysql.MariaDB)
	if err != nil {
		return err
	}
	defer src.Close()
	binlog, err := queryGTIDSet(ctx, src, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return err
	}
	if !binlog.Contains(a.pos) {
		return fmt.Errorf("%s's binary log is at %s, before the archive's end %s: waiting for it", a.spec.Instance, binlog, a.pos)
	}
	start, err := oldestBinlogStart(ctx, src)
	if err != nil {
		return err
	}
	if a.pos.IsEmpty() {
		a.log.Warn("the source's binary logs no longer hold its whole history: the archive starts where its oldest one begins", "position", start.String())
	} else {
		a.log.Error("the archive has a gap: the source purged the binary logs after the archive's end; archiving resumes where its oldest one begins, and restores cannot replay across the gap: take a new full backup",
			"archive end", a.pos.String(), "resumes at", start.String())
	}
	a.mu.Lock()
	a.pos = start
	a.mu.Unlock()
	return nil
}

// oldestBinlogStart is the GTID position at the start of the source's
// oldest binary log: what it can still send.
func oldestBinlogStart(ctx context.Context, src *mysql.Server) (mysql.GTIDSet, error) {
	rows, err := src.DB().QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	var first string
	if rows.Next() {
		cols, _ := rows.Columns()
		dest := make([]any, len(cols))
		for i := range dest {
			dest[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return mysql.GTIDSet{}, err
		}
		first = string(*dest[0].(*sql.RawBytes))
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return mysql.GTIDSet{}, err
	}
	if first == "" {
		return mysql.GTIDSet{}, errors.New("the source has no binary log")
	}
	return queryGTIDSet(ctx, src, "SELECT BINLOG_GTID_POS(?, 4)", first)
}

func queryGTIDSet(ctx context.Context, src *mysql.Server, query string, args ...any) (mysql.GTIDSet, error) {
	var text sql.NullString
	if err := src.DB().QueryRowContext(ctx, query, args...).Scan(&text); err != nil {
		return mysql.GTIDSet{}, err
	}
	return mysql.ParseGTIDSet("mariadb", text.String)
}

// store uploads the open segment's whole transactions, retrying until
// ctx ends, and closes it. Call it outside transactions.
func (a *archiver) store(ctx context.Context) error {
	if a.seg == nil || a.seg.txns == 0 {
		a.dropSegment() // nothing whole: its start may be stale
		return nil
	}
	s := a.spec
	m := a.seg.manifest()
	m.Namespace, m.Cluster, m.ClusterUID, m.Instance, m.Flavor = s.Namespace, s.Cluster, s.ClusterUID, s.Instance, s.Flavor
	for backoff := time.Second; ; backoff = min(2*backoff, maxBackoff) {
		stored, err := backup.WriteSegment(ctx, a.target, m, a.seg.reader())
		if err == nil {
			a.log.Info("archived a binlog segment", "segment", stored.Name, "first", stored.FirstGTID, "last", stored.LastGTID,
				"transactions", stored.Transactions, "bytes", stored.RawSize, "stored", stored.Size)
			a.setProblem(nil)
			a.dropSegment()
			return nil
		}
		a.setProblem(err)
		a.log.Warn("cannot archive a binlog segment; retrying", "err", err.Error(), "in", backoff)
		if sleep(ctx, backoff) != nil {
			return err
		}
	}
}

// flush handles the events conn has received already, then stores the
// whole transactions of the open segment, by deadline.
func (a *archiver) flush(conn *binlogConn, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if conn != nil {
		for _, ev := range conn.streamer.DumpEvents() {
			if err := a.handle(ctx, ev); err != nil {
				break
			}
		}
	}
	a.seg.discardPartial()
	return a.store(ctx)
}

func (a *archiver) dropSegment() {
	a.seg.remove()
	a.seg = nil
}

// Stop ends streaming and stores the whole transactions received, within
// grace; a segment that cannot be stored by then is streamed again by the
// next archiver, which starts where the archive ends.
func (a *archiver) Stop(grace time.Duration) error {
	a.once.Do(func() {
		if a.cancel == nil {
			return // never started
		}
		a.grace <- grace
		a.cancel()
		<-a.done
	})
	return nil
}

// Healthy implements HealthChecker: unhealthy while the archiver cannot
// stream from its source or store in its target.
func (a *archiver) Healthy(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.problem
}

func (a *archiver) setProblem(err error) {
	a.mu.Lock()
	a.problem = err
	a.mu.Unlock()
}

// closeConn closes a replication connection, waiting at most wait: the
// syncer kills its session on the source through a new connection, which
// an unreachable source would hold up.
func closeConn(c *binlogConn, wait time.Duration) {
	if c == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		c.syncer.Close()
		close(done)
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// sleep waits d, or less if ctx ends first (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// binlogFormat is a Format_description event: how the events after it
// are laid out.
type binlogFormat struct {
	raw     []byte
	version string // the server's
	layout  string // what decides the events' layout
}

func newBinlogFormat(ev *replication.BinlogEvent) (*binlogFormat, error) {
	fde, ok := ev.Event.(*replication.FormatDescriptionEvent)
	if !ok {
		return nil, fmt.Errorf("a Format_description event decoded as %T", ev.Event)
	}
	layout := fmt.Sprintf("%d/%s/%x/%d", fde.Version, fde.ServerVersion, fde.EventTypeHeaderLengths, fde.ChecksumAlgorithm)
	return &binlogFormat{raw: append([]byte(nil), ev.RawData...), version: fde.ServerVersion, layout: layout}, nil
}

func (f *binlogFormat) same(o *binlogFormat) bool { return f.layout == o.layout }

// segment is the open segment: a binary-log file of whole transactions,
// and the one in progress, buffered on disk.
type segment struct {
	f         *os.File
	format    *binlogFormat
	size      int64 // bytes written
	committed int64 // bytes up to the end of the last whole transaction
	start     mysql.GTIDSet
	end       mysql.GTIDSet
	cur       gtid // the transaction in progress, or the last one
	curTime   uint32
	first     gtid // the first and last whole transactions
	firstTime uint32
	last      gtid
	lastTime  uint32
	txns      int
	opened    time.Time
}

// newSegment creates the file of a segment starting at position start.
func newSegment(file string, format *binlogFormat, start mysql.GTIDSet) (*segment, error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	s := &segment{f: f, format: format, start: start, end: start, opened: time.Now()}
	if err := s.write(replication.BinLogFileHeader); err == nil {
		err = s.write(format.raw)
	}
	if err != nil {
		s.remove()
		return nil, err
	}
	s.committed = s.size
	return s, nil
}

func (s *segment) write(b []byte) error {
	if s == nil {
		return errors.New("an event of a transaction before its GTID event")
	}
	n, err := s.f.WriteAt(b, s.size)
	s.size += int64(n)
	return err
}

func (s *segment) begin(raw []byte, g gtid, at uint32) error {
	s.cur, s.curTime = g, at
	return s.write(raw)
}

func (s *segment) inTxn() bool { return s.size > s.committed }

func (s *segment) commit() {
	if s.txns == 0 {
		s.first, s.firstTime = s.cur, s.curTime
	}
	s.last, s.lastTime = s.cur, s.curTime
	s.committed, s.end = s.size, s.end.Union(s.cur.position())
	s.txns++
}

// discardPartial drops a transaction begun and not ended.
func (s *segment) discardPartial() {
	if s != nil && s.inTxn() {
		s.size = s.committed
		_ = s.f.Truncate(s.size)
	}
}

// due tells whether the segment should be stored: it holds a whole
// transaction and is old or large enough.
func (s *segment) due(maxAge time.Duration, maxBytes int64) bool {
	return s != nil && s.txns > 0 && (time.Since(s.opened) >= maxAge || s.committed >= maxBytes)
}

func (s *segment) reader() io.Reader { return io.NewSectionReader(s.f, 0, s.committed) }

func (s *segment) manifest() backup.SegmentManifest {
	return backup.SegmentManifest{ServerVersion: s.format.version, Start: s.start.String(), End: s.end.String(),
		FirstGTID: s.first.String(), LastGTID: s.last.String(), Transactions: s.txns,
		FirstEventTime: time.Unix(int64(s.firstTime), 0).UTC(), LastEventTime: time.Unix(int64(s.lastTime), 0).UTC(),
		Payload: backup.Payload{RawSize: s.committed}}
}

// remove deletes the segment's file.
func (s *segment) remove() {
	if s != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}
