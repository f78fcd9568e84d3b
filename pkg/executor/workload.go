package executor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/taskspec"
)

// Workload is what one task runs: a mysqld later, a test workload now.
type Workload interface {
	// Start begins the work and returns once it is up (the executor then
	// reports TASK_RUNNING), or with an error (TASK_FAILED with its
	// message), in which case nothing of it may be left running. ctx is
	// cancelled when the task is killed while starting.
	Start(ctx context.Context) error
	// Done is closed when the workload has ended, on its own or stopped;
	// Err then says why (nil: it finished cleanly).
	Done() <-chan struct{}
	Err() error
	// Stop ends the workload gracefully within grace, then forcefully, and
	// returns once it is gone. It must be safe to call more than once, and
	// after Start failed.
	Stop(grace time.Duration) error
}

// ending is the Done and Err of a workload that ends once.
type ending struct {
	done chan struct{}
	err  error // set before done closes
}

func newEnding() ending { return ending{done: make(chan struct{})} }

// end records why the workload ended; call it once.
func (e *ending) end(err error) {
	e.err = err
	close(e.done)
}

func (e *ending) Done() <-chan struct{} { return e.done }

func (e *ending) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}

// HealthChecker is a workload that can tell whether it is healthy; the
// executor asks every HealthInterval and reports changes in TASK_RUNNING
// updates with healthy set, as Mesos' own health checks do.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// Health checking.
const (
	DefaultHealthInterval = 10 * time.Second
	healthCheckTimeout    = 5 * time.Second
)

// Factory builds the workload of a task; sandbox is the executor's sandbox
// directory (volumes' container paths are relative to it).
type Factory func(task mesos.TaskInfo, sandbox string) (Workload, error)

// WorkloadLabel is the task label naming the workload kind of a task
// without data.
const WorkloadLabel = "mysos.io/workload"

// WorkloadKind returns the workload kind a task names: the "workload"
// member of its JSON data, or, for a task without data, its
// mysos.io/workload label.
func WorkloadKind(task mesos.TaskInfo) (string, error) {
	if len(task.Data) > 0 {
		d, err := taskspec.Parse(task.Data)
		if err != nil {
			return "", err
		}
		return d.Workload, nil
	}
	if task.Labels != nil {
		for _, l := range task.Labels.Labels {
			if l.Key == WorkloadLabel && l.GetValue() != "" {
				return l.GetValue(), nil
			}
		}
	}
	return "", fmt.Errorf(`task names no workload: give it data {"workload": KIND} or the label %s=KIND`, WorkloadLabel)
}

// ByKind is the Factory that dispatches on the task's workload kind (see
// WorkloadKind) to the factory registered for it.
func ByKind(kinds map[string]Factory) Factory {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	known := strings.Join(names, ", ")
	return func(task mesos.TaskInfo, sandbox string) (Workload, error) {
		kind, err := WorkloadKind(task)
		if err != nil {
			return nil, fmt.Errorf("%v (known workloads: %s)", err, known)
		}
		f := kinds[kind]
		if f == nil {
			return nil, fmt.Errorf("unknown workload %q (known workloads: %s)", kind, known)
		}
		return f(task, sandbox)
	}
}

// Builtin is the Factory of the executor binary: every built-in kind.
func Builtin() Factory {
	return ByKind(map[string]Factory{
		taskspec.WorkloadHold: NewHold, taskspec.WorkloadMySQL: NewMySQL, taskspec.WorkloadBackup: NewBackup,
		taskspec.WorkloadArchiver: NewArchiver,
	})
}
