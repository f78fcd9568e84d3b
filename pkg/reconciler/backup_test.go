package reconciler

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// newBackupRig is the failover rig's running cluster with hourly backups
// to a file target that keeps two.
func newBackupRig(t *testing.T) (*rig, *fakeMySQL, backup.Target) {
	t.Helper()
	g, db := newFailoverRig(t)
	dest := "file://" + t.TempDir()
	c := g.cluster()
	created := t0
	c.Metadata.CreationTimestamp = &created
	c.Spec.Backup = &spec.BackupSpec{Schedule: "@hourly", Destination: dest, Retention: spec.BackupRetention{Keep: ptr(int32(2))}}
	target, err := g.r.Backups.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	g.metrics = metrics.New()
	g.r.BackupMetrics = g.metrics.Backups
	return g, db, target
}

func ptr[T any](v T) *T { return &v }

// onlyJob is the cluster's one unfinished job.
func (g *rig) activeJob() *store.BackupJob {
	g.t.Helper()
	jobs, _ := g.store.ListBackupJobs(context.Background(), "default", "shop")
	return activeJob(jobs)
}

// launchFirstBackup lets the schedule fire once and stands in for the
// launcher: the job gets a task.
func (g *rig) launchFirstBackup() *store.BackupJob {
	g.t.Helper()
	g.clock = t0.Add(time.Hour + time.Second)
	g.settle()
	j := g.activeJob()
	j.Phase, j.TaskID, j.LaunchedAt = store.BackupLaunched, backupTaskID(j), g.clock
	if err := g.store.PutBackupJob(context.Background(), j); err != nil {
		g.t.Fatal(err)
	}
	return j
}

// runBackup stands in for the launcher and the backup task: it launches
// the active job and ends its task in state, with a manifest in the target
// when the task finished.
func (g *rig) runBackup(target backup.Target, state mesos.TaskState) *store.BackupJob {
	g.t.Helper()
	j := g.activeJob()
	if j == nil || j.Phase != store.BackupPending || j.Instance == "" {
		g.t.Fatalf("want a pending backup job with a source, have %+v", j)
	}
	j.Phase, j.TaskID, j.LaunchedAt = store.BackupLaunched, backupTaskID(j), g.clock
	if err := g.store.PutBackupJob(context.Background(), j); err != nil {
		g.t.Fatal(err)
	}
	if state == mesos.TASK_FINISHED {
		m := backup.Manifest{ID: j.ID, Namespace: j.Namespace, Cluster: j.Cluster, ClusterUID: j.ClusterUID, Instance: j.Instance,
			StartedAt: g.clock, FinishedAt: g.clock.Add(3 * time.Second), Flavor: "mariadb", GTIDPosition: "0-1-10",
			Payload: backup.Payload{Format: backup.FormatSQLZstd, Object: backup.DumpObject, Size: 1234}}
		if err := backup.WriteManifest(context.Background(), target, m); err != nil {
			g.t.Fatal(err)
		}
	}
	g.mesos.setTask(framework.Task{ID: j.TaskID, AgentID: j.AgentID, State: state, Message: "set by the test"})
	g.settle()
	return j
}

func TestScheduledBackupsCopyAReplicaAndKeepTheRetention(t *testing.T) {
	g, _, target := newBackupRig(t)
	g.settle()
	if j := g.activeJob(); j != nil {
		t.Fatalf("a backup was requested before the schedule fired: %+v", j)
	}
	// Two archived segments: one before every backup's position (0-1-10),
	// one after it.
	for _, seg := range [][2]string{{"", "0-1-5"}, {"0-1-5", "0-1-15"}} {
		m := backup.SegmentManifest{Namespace: "default", Cluster: "shop", ClusterUID: "u1", Flavor: "mariadb", Start: seg[0], End: seg[1]}
		if _, err := backup.WriteSegment(context.Background(), target, m, strings.NewReader("binlog")); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for hour := 1; hour <= 3; hour++ {
		g.clock = t0.Add(time.Duration(hour)*time.Hour + time.Second)
		g.settle()
		j := g.activeJob()
		if j == nil || j.Trigger != spec.BackupScheduled || j.Instance == "shop-0" || j.Instance == "" {
			t.Fatalf("hour %d: job %+v; want a scheduled backup of a replica", hour, j)
		}
		g.runBackup(target, mesos.TASK_FINISHED)
		ids = append(ids, j.ID)
		last := g.cluster().Status.Backup.Last
		if last == nil || last.ID != j.ID || last.Size != 1234 || last.Duration != "3s" {
			t.Fatalf("hour %d: status.backup.last = %+v; want backup %s, 1234 bytes, 3s", hour, last, j.ID)
		}
	}
	ms, err := backup.List(context.Background(), target, "default", "shop")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, m := range ms {
		kept = append(kept, m.ID)
	}
	if !slices.Equal(kept, ids[1:]) {
		t.Fatalf("kept %v; retention keep 2 should keep %v", kept, ids[1:])
	}
	segs, err := backup.ListSegments(context.Background(), target, "default", "shop", "u1")
	if err != nil || len(segs) != 1 || segs[0].End != "0-1-15" {
		t.Fatalf("segments %+v (%v); want only the one after the oldest kept backup's position", segs, err)
	}
	reasons := g.eventReasons()
	if !slices.Contains(reasons, "BackupSucceeded") || !slices.Contains(reasons, "BackupDeleted") {
		t.Fatalf("events %v; want BackupSucceeded and BackupDeleted", reasons)
	}
	if m := scrape(t, g.metrics); !strings.Contains(m, `mysos_backups_total{cluster="shop",namespace="default",result="succeeded"} 3`) ||
		!strings.Contains(m, `mysos_backup_last_size_bytes{cluster="shop",namespace="default"} 1234`) {
		t.Fatalf("metrics lack the backups:\n%s", m)
	}
	if next := g.cluster().Status.Backup.NextScheduled; next == nil || !next.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("nextScheduled = %v; want %s", next, t0.Add(4*time.Hour))
	}
}

// scrape is what reg serves at /metrics.
func scrape(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestAFailedBackupIsVisibleAndTheNextFiringRetries(t *testing.T) {
	g, _, target := newBackupRig(t)
	reg := metrics.New()
	g.r.BackupMetrics = reg.Backups
	g.clock = t0.Add(time.Hour + time.Second)
	g.settle()
	j := g.runBackup(target, mesos.TASK_FAILED)
	if m := scrape(t, reg); !strings.Contains(m, `mysos_backups_total{cluster="shop",namespace="default",result="failed"} 1`) {
		t.Fatalf("metrics lack the failed backup:\n%s", m)
	}
	st := g.cluster().Status.Backup
	if st.LastFailure == nil || st.LastFailure.ID != j.ID || st.Last != nil || st.Running != nil {
		t.Fatalf("status.backup = %+v; want the failure of %s and nothing else", st, j.ID)
	}
	if !slices.Contains(g.eventReasons(), "BackupFailed") {
		t.Fatalf("events %v; want BackupFailed", g.eventReasons())
	}
	g.clock = t0.Add(90 * time.Minute)
	g.settle()
	if j := g.activeJob(); j != nil {
		t.Fatalf("a backup was retried before the next firing: %+v", j)
	}
	g.clock = t0.Add(2*time.Hour + time.Second)
	g.settle()
	if j := g.activeJob(); j == nil || j.ScheduledFor != t0.Add(2*time.Hour) {
		t.Fatalf("job %+v; want the 02:00 firing", j)
	}
}

func TestAFinishedTaskWithoutManifestIsAFailedBackup(t *testing.T) {
	g, _, target := newBackupRig(t)
	j := g.launchFirstBackup()
	g.mesos.setTask(framework.Task{ID: j.TaskID, State: mesos.TASK_FINISHED})
	g.settle()
	if f := g.cluster().Status.Backup.LastFailure; f == nil || f.ID != j.ID {
		t.Fatalf("status.backup = %+v; a task that left no manifest in %s made no backup", g.cluster().Status.Backup, target)
	}
}

func TestABackupWithoutHealthyMemberFailsAfterItsTimeout(t *testing.T) {
	g, db, _ := newBackupRig(t)
	for i := range 3 {
		db.server(addr(i)).down = true
	}
	g.clock = t0.Add(time.Hour + time.Second)
	g.settle()
	if j := g.activeJob(); j == nil || j.Instance != "" {
		t.Fatalf("job %+v; want one waiting for a source", j)
	}
	g.clock = g.clock.Add(backupPendingTimeout + time.Second)
	g.settle()
	if f := g.cluster().Status.Backup.LastFailure; f == nil || f.Message == "" {
		t.Fatalf("status.backup = %+v; want a failure saying no member was healthy", g.cluster().Status.Backup)
	}
}

func TestExpired(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	var ms []backup.Manifest
	for h := range 5 { // taken 100, 75, 50, 25 and 0 hours ago
		ms = append(ms, backup.Manifest{ID: fmt.Sprint(h), FinishedAt: t0.Add(time.Duration(h) * 25 * time.Hour)})
	}
	ids := func(ms []backup.Manifest) (out []string) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		keep   int
		maxAge time.Duration
		want   []string
	}{
		{keep: 7, want: nil},
		{keep: 2, want: []string{"0", "1", "2"}},
		{keep: 7, maxAge: 60 * time.Hour, want: []string{"0", "1"}},
		{keep: 1, maxAge: 60 * time.Hour, want: []string{"0", "1", "2", "3"}},
		// The newest is never deleted by age alone.
		{keep: 7, maxAge: time.Hour, want: []string{"0", "1", "2", "3"}},
	}
	for _, tc := range tests {
		if got := ids(expired(ms, tc.keep, tc.maxAge, now)); !slices.Equal(got, tc.want) {
			t.Errorf("keep %d maxAge %s: expired %v; want %v", tc.keep, tc.maxAge, got, tc.want)
		}
	}
}

func TestARestoredClusterStartsItsFirstMemberAlone(t *testing.T) {
	c := newCluster(3, 1)
	c.Spec.Restore = &spec.RestoreSpec{From: "old/20260101T000000Z"}
	g := newRig(t, c, true)
	db := newFakeMySQL()
	g.r.Servers = db
	g.settle()
	if n := len(g.store.instances); n != 1 {
		t.Fatalf("%d instances before the restore; want shop-0 alone", n)
	}
	if st := g.cluster().Status.Restore; st == nil || st.Phase != spec.RestoreRunning {
		t.Fatalf("status.restore = %+v; want Restoring", st)
	}
	g.launchAll()
	db.server(addr(0))
	g.converge(db)
	if st := g.cluster().Status.Restore; st == nil || st.Phase != spec.RestoreDone {
		t.Fatalf("status.restore = %+v; want Restored once shop-0 serves", st)
	}
	if n := len(g.store.instances); n != 3 {
		t.Fatalf("%d instances after the restore; want all 3", n)
	}
}

// launchArchiver stands in for the launcher: the Pending archiver gets a
// running task.
func (g *rig) launchArchiver() *store.Archiver {
	g.t.Helper()
	a, _ := g.store.GetArchiver(context.Background(), "default", "shop")
	if a == nil || a.Phase != store.InstancePending {
		g.t.Fatalf("archiver %+v; want one Pending", a)
	}
	a.Phase, a.Launches, a.Since = store.InstanceLaunched, a.Launches+1, g.clock
	a.TaskID = archiverTaskID(a)
	if err := g.store.PutArchiver(context.Background(), a); err != nil {
		g.t.Fatal(err)
	}
	g.mesos.setTask(framework.Task{ID: a.TaskID, State: mesos.TASK_RUNNING})
	return a
}

func TestTheArchiverStreamsFromAReplicaAndMovesOffANewPrimary(t *testing.T) {
	g, db, _ := newBackupRig(t)
	g.cluster().Spec.Backup.BinlogArchiving = true
	g.settle()
	a := g.launchArchiver()
	if a.Instance == "shop-0" {
		t.Fatalf("the archiver streams from the primary %s; want a replica", a.Instance)
	}
	g.converge(db)
	if st := g.cluster().Status.Backup.Archiver; st == nil || st.State != "TASK_RUNNING" || st.Instance != a.Instance {
		t.Fatalf("status.backup.archiver = %+v", st)
	}
	// Its source becomes the primary (a switchover to it): the archiver
	// is moved to the remaining replica.
	writeAndReplicate(t, db, 4)
	g.store.clusters["default/shop"].Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover,
		From: "shop-0", To: a.Instance, Step: spec.StepRequested, StartedAt: g.clock}
	g.converge(db)
	if p := g.cluster().Status.CurrentPrimary; p != a.Instance {
		t.Fatalf("primary %s; the switchover should have made it %s", p, a.Instance)
	}
	if !slices.Contains(g.mesos.kills, a.TaskID) {
		t.Fatalf("killed %v; want the archiver's task %s, its source now the primary", g.mesos.kills, a.TaskID)
	}
	g.mesos.setTask(framework.Task{ID: a.TaskID, State: mesos.TASK_KILLED})
	g.clock = g.clock.Add(time.Minute)
	g.settle()
	next, _ := g.store.GetArchiver(context.Background(), "default", "shop")
	if next == nil || next.Phase != store.InstancePending || next.Instance == a.Instance || next.Instance == "shop-0" && g.cluster().Status.CurrentPrimary == "shop-0" {
		t.Fatalf("archiver %+v; want it Pending on the other replica", next)
	}
	// Archiving off: the task is killed and the record goes.
	b := g.launchArchiver()
	g.cluster().Spec.Backup.BinlogArchiving = false
	g.settle()
	if !slices.Contains(g.mesos.kills, b.TaskID) {
		t.Fatalf("killed %v; want %s once archiving is off", g.mesos.kills, b.TaskID)
	}
	g.mesos.setTask(framework.Task{ID: b.TaskID, State: mesos.TASK_KILLED})
	g.settle()
	if rec, _ := g.store.GetArchiver(context.Background(), "default", "shop"); rec != nil {
		t.Fatalf("archiver record %+v left after archiving was turned off", rec)
	}
}

func TestAStuckBackupIsKilledAndFailed(t *testing.T) {
	g, _, _ := newBackupRig(t)
	j := g.launchFirstBackup()
	g.mesos.setTask(framework.Task{ID: j.TaskID, State: mesos.TASK_UNREACHABLE})
	g.clock = g.clock.Add(backupTimeout - time.Minute)
	g.settle()
	if g.activeJob() == nil {
		t.Fatal("the backup was given up before its timeout")
	}
	g.clock = g.clock.Add(2 * time.Minute)
	g.settle()
	if f := g.cluster().Status.Backup.LastFailure; f == nil || f.ID != j.ID || !strings.Contains(f.Message, "killed") || !slices.Contains(g.mesos.kills, j.TaskID) {
		t.Fatalf("status.backup.lastFailure = %+v, kills %v; want %s failed and its task killed", f, g.mesos.kills, j.ID)
	}
}

// TestMetricsFollowTheClusterAndCountAFailover: /metrics shows the roles
// and phase a pass observed, and a failover once it completes.
func TestMetricsFollowTheClusterAndCountAFailover(t *testing.T) {
	g, db := newFailoverRig(t)
	reg := metrics.New()
	g.r.ClusterMetrics, g.r.OperationMetrics = reg.Clusters, reg.Operations
	writeAndReplicate(t, db, 3)
	g.settle()
	m := scrape(t, reg)
	for _, want := range []string{`mysos_cluster_phase{cluster="shop",namespace="default",phase="Running"} 1`,
		`mysos_instance_role{cluster="shop",instance="shop-0",namespace="default",role="primary"} 1`,
		`mysos_instance_role{cluster="shop",instance="shop-1",namespace="default",role="replica"} 1`,
		`mysos_instance_gtid_lag_transactions{cluster="shop",instance="shop-1",namespace="default"} 0`,
		`mysos_instance_replication_thread_running{cluster="shop",instance="shop-2",namespace="default",thread="io"} 1`,
		`mysos_cluster_instances{cluster="shop",namespace="default",state="TASK_RUNNING"} 3`} {
		if !strings.Contains(m, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, m)
		}
	}
	if got, want := slices.Sorted(slices.Values(reg.Servers.VariableNames())), slices.Sorted(slices.Values(mysql.CounterNames)); !slices.Equal(got, want) {
		t.Fatalf("the metrics show %v; Status reads %v", got, want)
	}
	db.server(addr(0)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	if m := scrape(t, reg); !strings.Contains(m, `mysos_operations_total{cluster="shop",kind="failover",namespace="default",result="completed"} 1`) ||
		!strings.Contains(m, `mysos_operation_duration_seconds_count{kind="failover"} 1`) {
		t.Fatalf("/metrics lacks the failover:\n%s", m)
	}
}

func TestLifecycleEventsRecordCreationAndScaling(t *testing.T) {
	g, _ := newFailoverRig(t)
	var got []string
	for _, ev := range g.store.events {
		got = append(got, ev.Reason+" "+ev.Instance)
	}
	want := []string{"ClusterCreated ", "InstanceCreated shop-0", "InstanceCreated shop-1", "InstanceCreated shop-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v; want %v", got, want)
	}
}
