package devcluster

import (
	"sync"
	"sync/atomic"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Messages from the master to an agent. They mirror the internal messages of
// real Mesos (RunTaskMessage, KillTaskMessage, ...), which is why they carry
// mesos types.
type (
	// msgRegistered answers msgRegisterAgent with the agent's id. Reconcile
	// lists, for a re-registration, the tasks the master placed on the
	// agent that its report lacked (Mesos' SlaveReregisteredMessage carries
	// them as ReconcileTasksMessages).
	msgRegistered struct {
		AgentID   mesos.AgentID
		Reconcile []msgReconcileTasks
	}
	// msgReconcileTasks asks the agent about tasks of one framework: it ends
	// with a reliable terminal update every one it does not know.
	msgReconcileTasks struct {
		Framework mesos.FrameworkInfo
		TaskIDs   []mesos.TaskID
	}
	// msgRunTasks launches tasks. Executor is nil for command tasks: the agent
	// then runs its built-in command executor. Group is true for LAUNCH_GROUP.
	msgRunTasks struct {
		Framework mesos.FrameworkInfo
		Executor  *mesos.ExecutorInfo
		Tasks     []mesos.TaskInfo
		Group     bool
	}
	msgKillTask struct {
		FrameworkID mesos.FrameworkID
		TaskID      mesos.TaskID
		KillPolicy  *mesos.KillPolicy
	}
	msgShutdownExecutor struct {
		FrameworkID mesos.FrameworkID
		ExecutorID  mesos.ExecutorID
	}
	// msgShutdownFramework kills every task and executor of a framework that
	// was torn down or whose failover timeout passed.
	msgShutdownFramework struct {
		FrameworkID mesos.FrameworkID
	}
	msgFrameworkToExecutor struct {
		FrameworkID mesos.FrameworkID
		ExecutorID  mesos.ExecutorID
		Data        []byte
	}
	// msgAcknowledge forwards a scheduler's ACKNOWLEDGE of a status update.
	msgAcknowledge struct {
		FrameworkID mesos.FrameworkID
		TaskID      mesos.TaskID
		UUID        []byte
	}
	// msgCheckpointResources gives the agent its whole set of checkpointed
	// resources (dynamic reservations and persistent volumes) after an
	// operation changed it; the agent persists it and creates or deletes
	// volume directories to match.
	msgCheckpointResources struct {
		Resources []mesos.Resource
	}
	// msgPing is the master's health check; the agent answers msgPong.
	msgPing struct{}
	// msgShutdownAgent tells an agent that the master will never accept it
	// again (it was marked gone by the operator), like Mesos'
	// ShutdownMessage: the agent kills every executor and stops
	// (re-)registering. The master sends it when it marks the agent gone and
	// again in answer to every later registration with the agent's id.
	msgShutdownAgent struct {
		Message string
	}
)

// Messages from an agent to the master.
type (
	// msgRegisterAgent registers a new agent (Info.ID unset) or re-registers
	// one after a restart or a partition, reporting what it still runs.
	msgRegisterAgent struct {
		Info                  mesos.AgentInfo
		CheckpointedResources []mesos.Resource
		Frameworks            []mesos.FrameworkInfo
		Executors             []mesos.ExecutorInfo
		Tasks                 []mesos.Task
	}
	// msgStatusUpdate carries one status update. Updates with a UUID are
	// reliable: the agent re-sends the oldest unacknowledged update of a task
	// until the scheduler acknowledges it (msgAcknowledge).
	msgStatusUpdate struct {
		AgentID     mesos.AgentID
		FrameworkID mesos.FrameworkID
		Status      mesos.TaskStatus
	}
	msgExitedExecutor struct {
		AgentID     mesos.AgentID
		FrameworkID mesos.FrameworkID
		ExecutorID  mesos.ExecutorID
		// Status is the wait status of the executor process.
		Status int32
	}
	msgExecutorToFramework struct {
		AgentID     mesos.AgentID
		FrameworkID mesos.FrameworkID
		ExecutorID  mesos.ExecutorID
		Data        []byte
	}
	msgPong struct {
		AgentID mesos.AgentID
	}
)

// link carries messages between the master and one agent, in order in each
// direction and never synchronously, so neither side calls into the other
// while holding its own lock. Cut drops everything in both directions, as a
// network partition would.
type link struct {
	toAgent, toMaster *mailbox
	cut               atomic.Bool
	// dropToAgent and dropToMaster cut one direction only (a one-way
	// partition).
	dropToAgent, dropToMaster atomic.Bool
}

func newLink(agent, master func(any)) *link {
	return &link{toAgent: newMailbox(agent), toMaster: newMailbox(master)}
}

// sendToAgent and sendToMaster enqueue msg unless the link is cut.
func (l *link) sendToAgent(msg any) {
	if !l.cut.Load() && !l.dropToAgent.Load() {
		l.toAgent.put(msg)
	}
}

func (l *link) sendToMaster(msg any) {
	if !l.cut.Load() && !l.dropToMaster.Load() {
		l.toMaster.put(msg)
	}
}

func (l *link) close() {
	l.toAgent.close()
	l.toMaster.close()
}

// mailbox delivers messages to handle one at a time, in order, on its own
// goroutine; put never blocks.
type mailbox struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []any
	closed  bool
	handle  func(any)
	drained chan struct{}
}

func newMailbox(handle func(any)) *mailbox {
	m := &mailbox{handle: handle, drained: make(chan struct{})}
	m.cond = sync.NewCond(&m.mu)
	go m.run()
	return m
}

func (m *mailbox) put(msg any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.queue = append(m.queue, msg)
	m.cond.Signal()
}

func (m *mailbox) run() {
	defer close(m.drained)
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.closed {
			m.cond.Wait()
		}
		if m.closed {
			m.mu.Unlock()
			return
		}
		msg := m.queue[0]
		m.queue = m.queue[1:]
		m.mu.Unlock()
		m.handle(msg)
	}
}

// close stops delivery; queued messages are dropped.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.cond.Broadcast()
	m.mu.Unlock()
	<-m.drained
}
