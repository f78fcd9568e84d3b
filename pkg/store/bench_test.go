package store

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// Benchmarks of status diffing (docs/benchmarks.md, "Hot paths"). Every
// reconcile pass ends in UpdateStatus, which deep-copies the stored status,
// lets the reconciler set what it observed, and writes only when the result
// differs (spec.SameJSON). Every status write that is made then reaches the
// watch, which decodes the old and new value to see whether a user request
// changed (requestChanged).

// benchStatus is the status of a healthy 5-instance MariaDB cluster with
// TLS, backups and binlog archiving, after one failover; gtidSeq is the
// primary's position in domain 0.
func benchStatus(gtidSeq int) spec.ClusterStatus {
	at := time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC)
	later := at.Add(42 * time.Second)
	next := at.Add(19*time.Hour + 30*time.Minute)
	ptrBool := func(v bool) *bool { return &v }
	lag := int64(0)
	st := spec.ClusterStatus{
		Phase: spec.PhaseRunning, ObservedGeneration: 7, ReadyReplicas: 5, CurrentPrimary: "orders-1",
		Conditions: []spec.Condition{
			{Type: spec.ConditionAccepted, Status: spec.ConditionTrue, Reason: "SpecAccepted",
				Message: "generation 7 is valid and observed by the scheduler", ObservedGeneration: 7, LastTransitionTime: at},
			{Type: spec.ConditionReady, Status: spec.ConditionTrue, Reason: "AllRunning",
				Message: "5 of 5 instances running", ObservedGeneration: 7, LastTransitionTime: at},
		},
		Endpoints: &spec.Endpoints{Primary: "mesos-agent-011.dc1.example.com:31002", Epoch: 4},
		Backup: &spec.BackupStatus{
			Last: &spec.BackupRecord{ID: "20261126-030000-a1b2", Trigger: "schedule", Instance: "orders-3", StartedAt: &at,
				FinishedAt: &later, Duration: "42s", Size: 22437888, GTIDPosition: "0-2-1790211,1-2-55012,2-3-998"},
			NextScheduled: &next,
			Archiver:      &spec.ArchiverStatus{Instance: "orders-2", TaskID: "mysos.shop.orders-archiver.3-5d41402a", State: "TASK_RUNNING"},
		},
		LastFailover: &spec.FailoverRecord{ID: "f-8c1e", From: "orders-0", To: "orders-1", At: at.Add(-72 * time.Hour), Acknowledged: true},
	}
	for i := range 5 {
		host := fmt.Sprintf("mesos-agent-%03d.dc1.example.com", 10+i)
		is := spec.InstanceStatus{
			Name: fmt.Sprintf("orders-%d", i), Phase: "Launched",
			TaskID:  fmt.Sprintf("mysos.shop.orders.%d.3-%08x", i, 0x5d41402a+i),
			AgentID: fmt.Sprintf("a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d-S%d", 10+i),
			Host:    host, Port: int32(31001 + i), Volume: fmt.Sprintf("shop.orders.%d.9e107d9d", i),
			State: "TASK_RUNNING", Role: "replica", Healthy: true, ReadOnly: ptrBool(true),
			GTIDExecuted: fmt.Sprintf("0-2-%d,1-2-55012,2-3-998", gtidSeq),
			Replication:  &spec.ReplicationStatus{Source: "mesos-agent-011.dc1.example.com:31002", IORunning: true, SQLRunning: true, SecondsBehind: &lag},
		}
		if i == 1 {
			is.Role, is.ReadOnly, is.Replication = "primary", ptrBool(false), nil
		} else {
			st.Endpoints.Replicas = append(st.Endpoints.Replicas, fmt.Sprintf("%s:%d", host, is.Port))
		}
		st.Instances = append(st.Instances, is)
	}
	return st
}

// mutateLikeWriteStatus sets what the reconciler's writeStatus sets, from a
// freshly decided status want.
func mutateLikeWriteStatus(st *spec.ClusterStatus, want spec.ClusterStatus, now time.Time) {
	st.Phase = want.Phase
	st.ObservedGeneration = want.ObservedGeneration
	st.ReadyReplicas = want.ReadyReplicas
	st.Instances = want.Instances
	st.Endpoints = want.Endpoints
	st.ErrantInstances = want.ErrantInstances
	st.Backup, st.Restore = want.Backup, want.Restore
	st.ReseedRequested = nil
	for _, c := range want.Conditions {
		st.SetCondition(c, now)
	}
}

// BenchmarkStatusDiff: UpdateStatus' decision, without etcd: deep copy,
// mutate, compare. "unchanged" is the common pass (nothing is written),
// "changed" one where a replica's GTID position moved.
func BenchmarkStatusDiff(b *testing.B) {
	stored := benchStatus(1843022)
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		want spec.ClusterStatus
		same bool
	}{{"unchanged", benchStatus(1843022), true}, {"changed", benchStatus(1843023), false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				next := deepCopyStatus(&stored)
				mutateLikeWriteStatus(next, c.want, now)
				if spec.SameJSON(stored, *next) != c.same {
					b.Fatalf("SameJSON = %v; want %v", !c.same, c.same)
				}
			}
		})
	}
}

// BenchmarkStatusDeepCopy and BenchmarkStatusSameJSON: the two halves of
// BenchmarkStatusDiff.
func BenchmarkStatusDeepCopy(b *testing.B) {
	stored := benchStatus(1843022)
	b.ReportAllocs()
	for b.Loop() {
		if next := deepCopyStatus(&stored); len(next.Instances) != 5 {
			b.Fatal("lost instances")
		}
	}
}

func BenchmarkStatusSameJSON(b *testing.B) {
	a, c := benchStatus(1843022), benchStatus(1843022)
	b.ReportAllocs()
	for b.Loop() {
		if !spec.SameJSON(a, c) {
			b.Fatal("equal statuses differ")
		}
	}
}

// BenchmarkStatusRequestChanged: the watch's look at one status write (a
// replica's position moved, no user request changed).
func BenchmarkStatusRequestChanged(b *testing.B) {
	prev, err := json.Marshal(storedStatus{UID: "4b7d1e2f-9a3c-4e8b-b6d5-1c2a3f4e5d6c", Status: benchStatus(1843022)})
	if err != nil {
		b.Fatal(err)
	}
	next, err := json.Marshal(storedStatus{UID: "4b7d1e2f-9a3c-4e8b-b6d5-1c2a3f4e5d6c", Status: benchStatus(1843023)})
	if err != nil {
		b.Fatal(err)
	}
	ev := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Value: next}, PrevKv: &mvccpb.KeyValue{Value: prev}}
	b.ReportAllocs()
	for b.Loop() {
		if requestChanged(ev) {
			b.Fatal("a request changed")
		}
	}
}
