package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"

	"github.com/mysos-project/mysos/pkg/devcluster"
)

// lightLauncher is the lightweight test executor of the control-plane
// benchmark: instead of starting the executor process the task asks for, the
// agent gets a goroutine that speaks the same executor HTTP API (protobuf,
// mesos-go's client) to it: SUBSCRIBE, TASK_RUNNING on LAUNCH, TASK_KILLED on
// KILL or SHUTDOWN, then it exits. So thousands of tasks cost the machine no
// processes, while the master, the agents and the scheduler do all their
// usual work. It records when each task was reported RUNNING and when each
// KILL arrived, which is what the benchmark times.
type lightLauncher struct {
	client *http.Client // shared by every executor: pooled connections per agent

	nextPid atomic.Int64

	mu       sync.Mutex
	running  map[string]time.Time // task id -> TASK_RUNNING accepted by the agent
	killed   map[string]time.Time // task id -> KILL received
	changed  chan struct{}        // closed and replaced on every record
	failures []string
}

func newLightLauncher() *lightLauncher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	l := &lightLauncher{client: &http.Client{Transport: tr, Timeout: 0},
		running: map[string]time.Time{}, killed: map[string]time.Time{}, changed: make(chan struct{})}
	// Real pids never reach 2^22 (the kernel's pid_max limit), so signals
	// the agent might send to these by number find no process.
	l.nextPid.Store(1 << 23)
	return l
}

func (l *lightLauncher) record(m map[string]time.Time, task string) {
	l.mu.Lock()
	if _, ok := m[task]; !ok {
		m[task] = time.Now()
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *lightLauncher) fail(format string, args ...any) {
	l.mu.Lock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// runningCount is how many tasks were reported RUNNING, and the time of the
// latest report.
func (l *lightLauncher) runningCount() (int, time.Time, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, at := range l.running {
		if at.After(last) {
			last = at
		}
	}
	return len(l.running), last, l.changed
}

// timeline lists, per second since start, how many tasks were reported
// RUNNING in it.
func (l *lightLauncher) timeline(start time.Time) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	perSecond := map[int]int{}
	last := 0
	for _, at := range l.running {
		s := int(at.Sub(start) / time.Second)
		perSecond[s]++
		last = max(last, s)
	}
	var out strings.Builder
	for s := 0; s <= last; s++ {
		fmt.Fprintf(&out, "%d %d\n", s, perSecond[s])
	}
	return []byte(out.String())
}

// killedAt is when the task's KILL arrived.
func (l *lightLauncher) killedAt(task string) (time.Time, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.killed[task]
	return at, ok, l.changed
}

// Launch starts one executor goroutine for the process the agent would
// start; the executor finds its agent, framework and id in the environment,
// as a real one does.
func (l *lightLauncher) Launch(spec devcluster.ProcessSpec) (devcluster.Process, error) {
	env := map[string]string{}
	for _, kv := range spec.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID"} {
		if env[k] == "" {
			return nil, fmt.Errorf("light executor: %s not in the environment", k)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &lightProcess{pid: int(l.nextPid.Add(1)), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		err := l.run(ctx, env)
		switch {
		case ctx.Err() != nil:
			p.status = syscall.WaitStatus(p.signal.Load())
		case err != nil:
			l.fail("executor %s: %v", env["MESOS_EXECUTOR_ID"], err)
			p.status = syscall.WaitStatus(1 << 8) // exit 1
		}
	}()
	return p, nil
}

// run is one executor's life: one subscription, events until its tasks
// are over. It does not re-subscribe: an agent restart is not part of the
// benchmark.
func (l *lightLauncher) run(ctx context.Context, env map[string]string) error {
	cli := httpcli.New(
		httpcli.Endpoint("http://"+env["MESOS_AGENT_ENDPOINT"]+"/api/v1/executor"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(l.client.Do),
	)
	opts := executor.CallOptions{calls.Framework(env["MESOS_FRAMEWORK_ID"]), calls.Executor(env["MESOS_EXECUTOR_ID"])}
	sender := calls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	subscriber := calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	executorID := mesos.ExecutorID{Value: env["MESOS_EXECUTOR_ID"]}

	live := map[string]bool{}
	update := func(task mesos.TaskID, state mesos.TaskState) error {
		id := uuid.New()
		st := mesos.TaskStatus{TaskID: task, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
			ExecutorID: &executorID, UUID: id[:]}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		resp, err := sender.Send(cctx, calls.NonStreaming(calls.Update(st)))
		if resp != nil {
			resp.Close()
		}
		if err != nil {
			return fmt.Errorf("update %s %s: %w", task.Value, state, err)
		}
		switch state {
		case mesos.TASK_RUNNING:
			live[task.Value] = true
			l.record(l.running, task.Value)
		default:
			delete(live, task.Value)
		}
		return nil
	}

	resp, err := subscriber.Send(ctx, calls.NonStreaming(calls.Subscribe(nil, nil)))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// Closing the stream ends the Decode below when the agent kills us.
	stop := context.AfterFunc(ctx, func() { resp.Close() })
	defer stop()
	defer resp.Close()
	launched := false
	for {
		var e executor.Event
		if err := resp.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if launched && len(live) == 0 {
				return nil // the agent closed the stream after our last task
			}
			return fmt.Errorf("event stream: %w", err)
		}
		switch e.Type {
		case executor.Event_LAUNCH:
			launched = true
			if err := update(e.Launch.Task.TaskID, mesos.TASK_RUNNING); err != nil {
				return err
			}
		case executor.Event_KILL:
			l.record(l.killed, e.Kill.TaskID.Value)
			if err := update(e.Kill.TaskID, mesos.TASK_KILLED); err != nil {
				return err
			}
		case executor.Event_SHUTDOWN:
			for id := range live {
				if err := update(mesos.TaskID{Value: id}, mesos.TASK_KILLED); err != nil {
					return err
				}
			}
			return nil
		case executor.Event_ACKNOWLEDGED:
			if launched && len(live) == 0 {
				return nil // our last task's terminal update is safe with the agent
			}
		}
	}
}

// lightProcess is a light executor as the agent sees a process.
type lightProcess struct {
	pid    int
	cancel context.CancelFunc
	signal atomic.Int32
	done   chan struct{}
	status syscall.WaitStatus
}

func (p *lightProcess) Pid() int { return p.pid }

func (p *lightProcess) Wait() (syscall.WaitStatus, error) {
	<-p.done
	return p.status, nil
}

// Signal ends the executor at once for SIGKILL and SIGTERM (it has nothing to
// clean up); other signals are ignored, as a process ignoring them would.
func (p *lightProcess) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errors.New("process already finished")
	default:
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		p.signal.CompareAndSwap(0, int32(sig))
		p.cancel()
	}
	return nil
}
