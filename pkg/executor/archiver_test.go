package executor

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// archiveTimeout bounds waiting for the archive to catch up.
const archiveTimeout = time.Minute

// The archiver stores the source's whole binary log in segments of whole
// transactions that chain with neither gap nor overlap: across segments
// closed by age, by size and by Stop, a restart, and a connection the
// source killed; each segment is a binary log mariadb-binlog reads.
func TestArchiverFile(t *testing.T) {
	target := taskspec.Target{URL: "file://" + t.TempDir()}
	src := mysqltest.Start(t, mysqltest.Options{})
	db := src.Open(t)
	mustExec(t, db, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	writeRows(t, db, 1, 20)

	spec := archiverSpec(src, target)
	w := startArchiver(t, spec)
	waitArchived(t, target, db)
	// A multi-statement transaction, DDL, a non-transactional table
	// (its group ends with a COMMIT query), a rollback, XA; each last
	// before a wait, so that its end must be recognised for the segment
	// to be stored.
	session := newSession(t, db)
	execOn(t, session, "BEGIN", "INSERT INTO shop.t VALUES (1000, 'a')", "UPDATE shop.t SET v = 'b' WHERE id < 5", "COMMIT")
	waitArchived(t, target, db)
	mustExec(t, db, "CREATE TABLE shop.m (id INT) ENGINE=MyISAM")
	waitArchived(t, target, db)
	mustExec(t, db, "INSERT INTO shop.m VALUES (1), (2)")
	waitArchived(t, target, db)
	execOn(t, session, "BEGIN", "INSERT INTO shop.m VALUES (3)", "INSERT INTO shop.t VALUES (1001, 'gone')", "ROLLBACK")
	waitArchived(t, target, db)
	execOn(t, session, "XA START 'x1'", "INSERT INTO shop.t VALUES (1002, 'xa')", "XA END 'x1'", "XA PREPARE 'x1'")
	waitArchived(t, target, db)
	execOn(t, session, "XA COMMIT 'x1'")
	waitArchived(t, target, db)
	writeRows(t, db, 21, 40)
	waitArchived(t, target, db)

	// The source kills the archiver's session: it reconnects and goes on.
	killDumpThreads(t, db)
	writeRows(t, db, 41, 60)
	waitArchived(t, target, db)

	// Stopped while transactions arrive, restarted.
	writeRows(t, db, 61, 80)
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	writeRows(t, db, 81, 100)
	w = startArchiver(t, spec)
	waitArchived(t, target, db)

	// Segments closed by size; Stop stores the whole transactions received.
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	spec.SegmentSeconds, spec.SegmentBytes = 3600, 2048
	w = startArchiver(t, spec)
	writeRows(t, db, 101, 133)
	want := binlogPos(t, db)
	testutil.WaitFor(t, archiveTimeout, "the archiver to receive every transaction", func() bool { return w.(*archiver).received().Equal(want) })
	if n := len(segmentsAfter(t, target, want.String(), 33)); n < 3 {
		t.Fatalf("%d segments of the last 33 transactions; want them closed by size", n)
	}
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if last := listSegments(t, target); last[len(last)-1].End != want.String() {
		t.Fatalf("after Stop the archive ends at %s; the archiver had received %s", last[len(last)-1].End, want)
	}
	checkArchive(t, target, db)
}

// The same against a real HDFS.
func TestArchiverHDFS(t *testing.T) {
	h := testutil.StartHDFS(t)
	target := taskspec.Target{URL: "hdfs://" + h.Addr + "/mysos/backups"}
	src := mysqltest.Start(t, mysqltest.Options{})
	db := src.Open(t)
	mustExec(t, db, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	w := startArchiver(t, archiverSpec(src, target))
	writeRows(t, db, 1, 30)
	waitArchived(t, target, db)
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, target, db)
}

// A source whose binary logs were purged: the archive starts at its
// position; one behind the archive's end (a lagging replica) is waited
// for, not archived from.
func TestArchiverPurgedAndBehind(t *testing.T) {
	target := taskspec.Target{URL: "file://" + t.TempDir()}
	src := mysqltest.Start(t, mysqltest.Options{})
	db := src.Open(t)
	mustExec(t, db, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	writeRows(t, db, 1, 10)
	purgeBinlogs(t, db)
	purged := binlogPos(t, db)
	w := startArchiver(t, archiverSpec(src, target))
	testutil.WaitFor(t, archiveTimeout, "the archiver to resume at the source's position", func() bool { return w.(*archiver).received().Equal(purged) })
	writeRows(t, db, 11, 20)
	waitArchived(t, target, db)
	segs := listSegments(t, target)
	if segs[0].Start != purged.String() {
		t.Fatalf("the archive starts at %q; the source's binary log starts at %s", segs[0].Start, purged)
	}
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Another member, behind the archive: nothing archived, unhealthy.
	other := mysqltest.Start(t, mysqltest.Options{})
	mustExec(t, other.Open(t), "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	writeRows(t, other.Open(t), 1, 3)
	spec := archiverSpec(other, target)
	w = startArchiver(t, spec)
	h := w.(HealthChecker)
	testutil.WaitFor(t, archiveTimeout, "the archiver to report the source behind", func() bool {
		err := h.Healthy(context.Background())
		return err != nil && strings.Contains(err.Error(), "1236")
	})
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if after := listSegments(t, target); len(after) != len(segs) {
		t.Fatalf("archived from a source behind the archive: %d segments, were %d", len(after), len(segs))
	}
}

// A source whose older binary logs were purged while its current one holds
// transactions the archive lacks: the archive starts where that binary log
// begins, so nothing the source still has is skipped.
func TestArchiverResumesFromOldestBinlog(t *testing.T) {
	target := taskspec.Target{URL: "file://" + t.TempDir()}
	src := mysqltest.Start(t, mysqltest.Options{})
	db := src.Open(t)
	mustExec(t, db, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	writeRows(t, db, 1, 10)
	purgeBinlogs(t, db)
	oldest := binlogPos(t, db)
	writeRows(t, db, 11, 20) // in the binary log that remains
	w := startArchiver(t, archiverSpec(src, target))
	writeRows(t, db, 21, 25)
	waitArchived(t, target, db)
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if segs := listSegments(t, target); segs[0].Start != oldest.String() {
		t.Fatalf("the archive starts at %q; the source's oldest binary log begins at %s (rows 11-20 are still in it)", segs[0].Start, oldest)
	}
}

// A source whose binary log begins late (a replica seeded from a dump):
// the archive starts right before its first transaction.
func TestArchiverHistoryStartsLate(t *testing.T) {
	target := taskspec.Target{URL: "file://" + t.TempDir()}
	src := mysqltest.Start(t, mysqltest.Options{})
	db := src.Open(t)
	execOn(t, newSession(t, db), "SET SESSION gtid_seq_no = 42", "CREATE DATABASE shop")
	mustExec(t, db, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(200))")
	w := startArchiver(t, archiverSpec(src, target))
	waitArchived(t, target, db)
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	segs := listSegments(t, target)
	if want := fmt.Sprintf("0-%d-41", src.ServerID); segs[0].Start != want || segs[0].FirstGTID != fmt.Sprintf("0-%d-42", src.ServerID) {
		t.Fatalf("the archive starts at %q with %s; want %s", segs[0].Start, segs[0].FirstGTID, want)
	}
}

// An unreachable source fails the start, after the connect timeout.
func TestArchiverUnreachable(t *testing.T) {
	spec := taskspec.Archiver{Target: taskspec.Target{URL: "file://" + t.TempDir()}, Namespace: "default", Cluster: "shop",
		Flavor: "mariadb", Instance: "shop-1", Source: taskspec.Donor{Host: "127.0.0.1", Port: testutil.FreePort(t)},
		User: "x", Password: "secret-pw", ServerID: 900}
	w := newWorkload(t, taskspec.Data{Workload: taskspec.WorkloadArchiver, Archiver: &spec})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := w.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "binlog archiver of shop: stream from shop-1 (127.0.0.1:") ||
		!strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start against nobody: %v", err)
	}
	_ = w.Stop(time.Second)

	// A wrong password: refused, and not in the message.
	src := mysqltest.Start(t, mysqltest.Options{})
	spec.Source.Port = src.Port
	w = newWorkload(t, taskspec.Data{Workload: taskspec.WorkloadArchiver, Archiver: &spec})
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = w.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "Access denied") || strings.Contains(err.Error(), "secret-pw") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start with a wrong password: %v", err)
	}
	_ = w.Stop(time.Second)
}

func archiverSpec(src *mysqltest.Instance, target taskspec.Target) taskspec.Archiver {
	return taskspec.Archiver{Target: target, Namespace: "default", Cluster: "shop", ClusterUID: "uid-shop", Flavor: "mariadb",
		Instance: "shop-1", Source: taskspec.Donor{Host: "127.0.0.1", Port: src.Port},
		User: mysqltest.ReplUser, Password: src.ReplPassword, ServerID: 900, SegmentSeconds: 1}
}

func startArchiver(t *testing.T, spec taskspec.Archiver) Workload {
	t.Helper()
	w := newWorkload(t, taskspec.Data{Workload: taskspec.WorkloadArchiver, Archiver: &spec})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("start the archiver: %v", err)
	}
	t.Cleanup(func() { _ = w.Stop(10 * time.Second) })
	return w
}

// newSession is one connection of db's, for statements that must share a
// session (transactions).
func newSession(t *testing.T, db *mysql.Server) *sql.Conn {
	t.Helper()
	c, err := db.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func execOn(t *testing.T, c *sql.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := c.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// writeRows inserts rows from to to, one transaction each.
func writeRows(t *testing.T, db *mysql.Server, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		mustExec(t, db, fmt.Sprintf("INSERT INTO shop.t VALUES (%d, REPEAT('x', 150))", i))
	}
}

func binlogPos(t *testing.T, db *mysql.Server) mysql.GTIDSet {
	t.Helper()
	var s string
	if err := db.DB().QueryRowContext(context.Background(), "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&s); err != nil {
		t.Fatal(err)
	}
	set, err := mysql.ParseGTIDSet("mariadb", s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// waitArchived waits until the archive ends where the source's binary
// log does.
func waitArchived(t *testing.T, target taskspec.Target, db *mysql.Server) {
	t.Helper()
	want := binlogPos(t, db)
	tg := openTarget(t, target)
	defer tg.Close()
	var end string
	ok := testutil.Eventually(archiveTimeout, func() bool {
		last, ok, err := backup.LastSegment(context.Background(), tg, "default", "shop", "uid-shop")
		end = last.End
		return err == nil && ok && last.End == want.String()
	})
	if !ok {
		t.Fatalf("the archive ends at %q after %s; the source's binary log at %s", end, archiveTimeout, want)
	}
}

func listSegments(t *testing.T, target taskspec.Target) []backup.SegmentManifest {
	t.Helper()
	tg := openTarget(t, target)
	defer tg.Close()
	segs, err := backup.ListSegments(context.Background(), tg, "default", "shop", "uid-shop")
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// segmentsAfter are the segments of the last n transactions up to end.
func segmentsAfter(t *testing.T, target taskspec.Target, end string, n uint64) []backup.SegmentManifest {
	t.Helper()
	g, err := parseGTID(end)
	if err != nil {
		t.Fatal(err)
	}
	var out []backup.SegmentManifest
	for _, m := range listSegments(t, target) {
		start, err := mysql.MariaDB.ParseGTIDSet(m.Start)
		if _, s, _ := start.Domain(0); err == nil && s >= g.seq-n {
			out = append(out, m)
		}
	}
	return out
}

// checkArchive checks that the segments chain from the empty position to
// the source's, that each holds what its manifest says, and that together
// they hold every transaction of the source exactly once, in order.
func checkArchive(t *testing.T, target taskspec.Target, db *mysql.Server) {
	t.Helper()
	segs := listSegments(t, target)
	tg := openTarget(t, target)
	defer tg.Close()
	prev, next := "", uint64(1)
	for _, m := range segs {
		if m.Start != prev {
			t.Fatalf("segment %s starts at %q; the one before ends at %q", m.Name, m.Start, prev)
		}
		gtids, raw := readSegmentGTIDs(t, tg, m)
		if len(gtids) != m.Transactions || gtids[0].String() != m.FirstGTID || gtids[len(gtids)-1].String() != m.LastGTID ||
			m.End != gtids[len(gtids)-1].String() || m.Instance != "shop-1" || m.LastEventTime.Before(m.FirstEventTime) {
			t.Fatalf("segment %s holds %v; its manifest: %+v", m.Name, gtids, m)
		}
		for _, g := range gtids {
			if g.seq != next {
				t.Fatalf("segment %s holds %s; want sequence number %d next", m.Name, g, next)
			}
			next++
		}
		checkMariadbBinlog(t, raw, gtids)
		prev = m.End
	}
	if want := binlogPos(t, db).String(); prev != want {
		t.Fatalf("the archive ends at %q; the source at %s", prev, want)
	}
}

// readSegmentGTIDs reads a segment back: its transactions' GTIDs, each
// begun and ended, and its raw bytes.
func readSegmentGTIDs(t *testing.T, tg backup.Target, m backup.SegmentManifest) ([]gtid, []byte) {
	t.Helper()
	r, err := backup.OpenSegment(context.Background(), tg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var scan txnScanner
	var gtids []gtid
	formats := 0
	err = readBinlog(bytes.NewReader(raw), func(ev *replication.BinlogEvent) error {
		role, err := scan.scan(ev)
		switch {
		case err != nil:
			return err
		case role == formatDescription:
			formats++
		case role == txnBegin:
			gtids = append(gtids, scan.gtid)
		case role == outside:
			return fmt.Errorf("a %s event outside transactions", ev.Header.EventType)
		}
		return nil
	})
	if err != nil || formats != 1 || scan.in || len(gtids) == 0 {
		t.Fatalf("segment %s: %v; %d Format_description events, a transaction open at the end: %v", m.Name, err, formats, scan.in)
	}
	return gtids, raw
}

// checkMariadbBinlog checks that mariadb-binlog reads a segment and finds
// its transactions.
func checkMariadbBinlog(t *testing.T, raw []byte, gtids []gtid) {
	t.Helper()
	bin, err := findBinary("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--no-defaults", "-")
	var out, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(raw), &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("mariadb-binlog: %v: %s", err, stderr.String())
	}
	if n := strings.Count(out.String(), "\tGTID "); n != len(gtids) {
		t.Fatalf("mariadb-binlog shows %d GTIDs; the segment has %d", n, len(gtids))
	}
}

// killDumpThreads kills the source's binlog dump sessions.
func killDumpThreads(t *testing.T, db *mysql.Server) {
	t.Helper()
	rows, err := db.DB().QueryContext(context.Background(), "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Fatal("no binlog dump session on the source")
	}
	for _, id := range ids {
		mustExec(t, db, fmt.Sprintf("KILL %d", id))
	}
}

// purgeBinlogs starts a new binary log and purges the others, once the
// server no longer needs them for crash recovery.
func purgeBinlogs(t *testing.T, db *mysql.Server) {
	t.Helper()
	mustExec(t, db, "FLUSH BINARY LOGS")
	testutil.WaitFor(t, archiveTimeout, "the old binary logs to be purged", func() bool {
		logs := binaryLogs(t, db)
		mustExec(t, db, "PURGE BINARY LOGS TO '"+logs[len(logs)-1]+"'")
		return len(binaryLogs(t, db)) == 1
	})
}

func binaryLogs(t *testing.T, db *mysql.Server) []string {
	t.Helper()
	rows, err := db.DB().QueryContext(context.Background(), "SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}
