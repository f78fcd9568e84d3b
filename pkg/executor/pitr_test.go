package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// pitrPoint is the source's state at one point of its history.
type pitrPoint struct {
	pos     mysql.GTIDSet
	summary string
}

// A backup, then batches of writes archived (the second right after a
// second boundary T): a restore replays exactly the transactions committed
// before T with StopTime, up to a GTID with StopGTID, all of them without
// either; a stop GTID past the archive, a corrupt segment and a missing
// one fail the restore, saying so.
func TestPointInTimeRestore(t *testing.T) {
	root := t.TempDir()
	target := taskspec.Target{URL: "file://" + root}
	src, _ := startSource(t)
	db := src.Open(t)
	w := startArchiver(t, archiverSpec(src, target))
	spec := backupSpec(src, target, backup.NewID(time.Now()))
	if err := runBackup(t, spec); err != nil {
		t.Fatal(err)
	}
	id := spec.ID

	mustExec(t, db, "INSERT INTO shop.orders SELECT seq, 'batch A', 1 FROM shop.seq_5001_to_5100")
	execOn(t, newSession(t, db), "BEGIN", "UPDATE shop.orders SET qty = qty + 10 WHERE id <= 100",
		"DELETE FROM shop.orders WHERE id BETWEEN 200 AND 209", "COMMIT")
	a := pitrState(t, db)
	stopTime := nextSecond(t)
	mustExec(t, db, "UPDATE shop.orders SET item = 'batch B' WHERE id % 3 = 0",
		"CREATE TABLE shop.audit (id INT PRIMARY KEY, note TEXT)", "INSERT INTO shop.audit VALUES (1, 'B')")
	b := pitrState(t, db)
	mustExec(t, db, "DELETE FROM shop.orders WHERE id > 4000", "INSERT INTO shop.audit VALUES (2, 'C')")
	waitArchived(t, target, db)
	// Two more batches, each in a segment of its own.
	mustExec(t, db, "INSERT INTO shop.audit VALUES (3, 'D')")
	waitArchived(t, target, db)
	mustExec(t, db, "UPDATE shop.orders SET qty = 0 WHERE id < 50", "INSERT INTO shop.audit VALUES (4, 'E')")
	e := pitrState(t, db)
	waitArchived(t, target, db)
	if err := w.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// StopTime half a second after T: truncated to T's second.
	at := stopTime.Add(500 * time.Millisecond)
	checkPITR(t, restoreAt(target, id, &at, ""), a)
	checkPITR(t, restoreAt(target, id, nil, b.pos.String()), b)
	checkPITR(t, restoreAt(target, id, nil, ""), e)

	g, _ := parseGTID(e.pos.String())
	beyond := gtid{domain: g.domain, server: g.server, seq: g.seq + 5}
	failPITR(t, restoreAt(target, id, nil, beyond.String()), fmt.Sprintf("the archive of shop ends at %s, before %s", e.pos, beyond))

	// The segment of batch D changed behind the archive's back.
	chain := replayChain(t, target, id)
	if len(chain) < 3 {
		t.Fatalf("the replay chain has %d segments; the test wants the last two batches in their own", len(chain))
	}
	before, mid, next := chain[len(chain)-3], chain[len(chain)-2], chain[len(chain)-1]
	file := filepath.Join(root, filepath.FromSlash(path.Join(backup.BinlogDir("default", "shop"), mid.Object)))
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0x20
	if err := os.WriteFile(file, bad, 0o640); err != nil {
		t.Fatal(err)
	}
	failPITR(t, restoreAt(target, id, nil, ""), "binlog segment shop/"+mid.Name+" is corrupt: "+mid.Object+" has SHA-256 ")

	// Gone altogether: a gap.
	for _, suffix := range []string{".json", ".binlog.zst"} {
		if err := os.Remove(filepath.Join(filepath.Dir(file), mid.Name+suffix)); err != nil {
			t.Fatal(err)
		}
	}
	failPITR(t, restoreAt(target, id, nil, ""), fmt.Sprintf("the archive of shop has a gap: segment %s ends at %s but the next, %s, starts at %s",
		before.Name, before.End, next.Name, next.Start))
}

// pitrState is the source's position and data now.
func pitrState(t *testing.T, db *mysql.Server) pitrPoint {
	t.Helper()
	return pitrPoint{pos: binlogPos(t, db), summary: pitrSummary(t, db)}
}

// pitrSummary describes shop.orders and shop.audit.
func pitrSummary(t *testing.T, db *mysql.Server) string {
	t.Helper()
	var audit []string
	rows, err := db.DB().QueryContext(context.Background(), "SELECT note FROM shop.audit ORDER BY id")
	if err == nil {
		for rows.Next() {
			var note string
			if err := rows.Scan(&note); err != nil {
				t.Fatal(err)
			}
			audit = append(audit, note)
		}
		rows.Close()
	} else if !strings.Contains(err.Error(), "doesn't exist") {
		t.Fatal(err)
	}
	return fmt.Sprintf("orders: %s; audit: %v (table there: %v)", tableSummary(t, db), audit, err == nil)
}

// nextSecond waits until the clock has passed the next second boundary and
// returns it: what ran before has earlier binlog timestamps, what runs
// after has this one or later.
func nextSecond(t *testing.T) time.Time {
	t.Helper()
	next := time.Now().Truncate(time.Second).Add(time.Second)
	testutil.WaitFor(t, 3*time.Second, "the next second", func() bool { return !time.Now().Before(next) })
	return next
}

func restoreAt(target taskspec.Target, id string, stopTime *time.Time, stopGTID string) *taskspec.MySQL {
	spec := restoreSpec(target, id)
	spec.Restore.Replay, spec.Restore.StopTime, spec.Restore.StopGTID = true, stopTime, stopGTID
	return spec
}

// checkPITR restores and checks the data and position against want's.
func checkPITR(t *testing.T, spec *taskspec.MySQL, want pitrPoint) {
	t.Helper()
	w, _, ep := mysqldWorkload(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), workloadTimeout)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("restore to stop time %v, stop GTID %q: %v", spec.Restore.StopTime, spec.Restore.StopGTID, err)
	}
	defer w.Stop(30 * time.Second)
	db, err := mysql.Open(ep, mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := pitrSummary(t, db); got != want.summary {
		t.Fatalf("restored to stop time %v, stop GTID %q: %s; want %s", spec.Restore.StopTime, spec.Restore.StopGTID, got, want.summary)
	}
	if pos, err := db.GTIDExecuted(ctx); err != nil || !pos.Equal(want.pos) {
		t.Fatalf("restored to stop time %v, stop GTID %q: at GTID position %v (%v); want %s", spec.Restore.StopTime, spec.Restore.StopGTID, pos, err, want.pos)
	}
	if binlog := binlogPos(t, db); !binlog.IsEmpty() {
		t.Fatalf("the replay wrote the restored member's binary log: %s", binlog)
	}
}

// failPITR checks that the restore fails saying want, with no data
// directory left in place.
func failPITR(t *testing.T, spec *taskspec.MySQL, want string) {
	t.Helper()
	w, dataDir, _ := mysqldWorkload(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), workloadTimeout)
	defer cancel()
	err := w.Start(ctx)
	_ = w.Stop(10 * time.Second)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("restore: %v; want a failure saying %q", err, want)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after a failed restore the data directory is in place (%v)", err)
	}
}

// replayChain is the chain a replay from backup id reads.
func replayChain(t *testing.T, target taskspec.Target, id string) []backup.SegmentManifest {
	t.Helper()
	m := readManifest(t, target, id)
	from, err := mysql.ParseGTIDSet("mariadb", m.GTIDPosition)
	if err != nil {
		t.Fatal(err)
	}
	tg := openTarget(t, target)
	defer tg.Close()
	chain, err := backup.Chain(context.Background(), tg, "default", "shop", "uid-shop", from)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}
