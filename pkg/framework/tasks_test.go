package framework

import (
	"log/slog"
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// A terminal answer that raced a launch (TASK_GONE from a reconciliation
// that reached the master before the ACCEPT) is followed by the task's own
// updates: the table follows them, and whoever listens hears each one, so
// the task is not lost track of.
func TestATaskReportedGoneThenRunningIsRunning(t *testing.T) {
	msg := "Reconciliation: Task is unknown to the agent"
	var heard []mesos.TaskState
	f, err := New(Config{Masters: []string{"http://127.0.0.1:1"}, OnUpdate: func(t Task) { heard = append(heard, t.State) }},
		&memIDs{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	id := mesos.TaskID{Value: "default.shop.0.1-x"}
	agent := &mesos.AgentID{Value: "S2"}
	f.noteLaunched([]mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{
		TaskInfos: []mesos.TaskInfo{{TaskID: id, AgentID: *agent}}}}})
	f.updateEvent(mesos.TaskStatus{TaskID: id, AgentID: agent, State: mesos.TASK_GONE.Enum(),
		Source: mesos.SOURCE_MASTER.Enum(), Reason: mesos.REASON_RECONCILIATION.Enum(),
		Message: &msg})
	f.updateEvent(mesos.TaskStatus{TaskID: id, State: mesos.TASK_STARTING.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: []byte("0123456789abcdef")})
	f.updateEvent(mesos.TaskStatus{TaskID: id, State: mesos.TASK_RUNNING.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: []byte("fedcba9876543210")})
	got, ok := f.Task(id.Value)
	if !ok || got.State != mesos.TASK_RUNNING || got.AgentID != "S2" || got.Terminal() {
		t.Fatalf("task %+v (known %v); want TASK_RUNNING on S2", got, ok)
	}
	if want := []mesos.TaskState{mesos.TASK_GONE, mesos.TASK_STARTING, mesos.TASK_RUNNING}; !slices.Equal(heard, want) {
		t.Fatalf("heard %v; want %v", heard, want)
	}
}
