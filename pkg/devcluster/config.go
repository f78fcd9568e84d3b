package devcluster

import "time"

// Timeouts are Mesos' timing flags. Defaults are Mesos' own; tests shorten
// them so that failure handling runs in milliseconds.
type Timeouts struct {
	// Heartbeat is the interval of HEARTBEAT events on scheduler streams
	// (Mesos: 15s).
	Heartbeat time.Duration
	// AllocationInterval is how often offers are made (--allocation_interval, 1s).
	AllocationInterval time.Duration
	// AgentPing and MaxAgentPings: an agent that misses MaxAgentPings pings
	// in a row is marked unreachable (--agent_ping_timeout 15s,
	// --max_agent_ping_timeouts 5).
	AgentPing     time.Duration
	MaxAgentPings int
	// ExecutorRegistration bounds how long a launched executor may take to
	// SUBSCRIBE (--executor_registration_timeout, 1min).
	ExecutorRegistration time.Duration
	// ExecutorReregistration bounds how long executors may take to
	// re-subscribe after an agent restart (--executor_reregistration_timeout, 2s).
	ExecutorReregistration time.Duration
	// ExecutorShutdownGrace is how long an executor may take to exit after
	// SHUTDOWN before its process group is killed
	// (--executor_shutdown_grace_period, 5s).
	ExecutorShutdownGrace time.Duration
	// UpdateRetryMin and UpdateRetryMax bound the backoff of unacknowledged
	// status updates (Mesos: 10s doubling up to 10min).
	UpdateRetryMin, UpdateRetryMax time.Duration
	// ExecutorHeartbeat is the interval of HEARTBEAT events on executor
	// streams (Mesos: 30min; mesos-go's example executor dies on them).
	ExecutorHeartbeat time.Duration
	// AgentReregistration is how long a new leading master (after a restart
	// or a failover) waits for the agents of its registry to re-register
	// (--agent_reregister_timeout, 10min). Meanwhile explicit reconciliation
	// of tasks it does not know on those agents gets no answer; afterwards
	// the agents still missing are marked unreachable.
	AgentReregistration time.Duration
	// MasterRecovery is how long a new leading master answers 503 to every
	// scheduler call while it "reads its registry", ending early once every
	// agent of the registry re-registered. Mesos has no flag for it: how long
	// Master::Http::scheduler answers 503 depends on the registry backend.
	// Zero means no such phase.
	MasterRecovery time.Duration
	// OfferTimeout rescinds offers a framework holds longer
	// (--offer_timeout); zero, the default, never does.
	OfferTimeout time.Duration
}

// DefaultTimeouts are Mesos' defaults.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Heartbeat:              15 * time.Second,
		AllocationInterval:     time.Second,
		AgentPing:              15 * time.Second,
		MaxAgentPings:          5,
		ExecutorRegistration:   time.Minute,
		ExecutorReregistration: 2 * time.Second,
		ExecutorShutdownGrace:  5 * time.Second,
		UpdateRetryMin:         10 * time.Second,
		UpdateRetryMax:         10 * time.Minute,
		ExecutorHeartbeat:      30 * time.Minute,
		AgentReregistration:    10 * time.Minute,
		MasterRecovery:         time.Second,
	}
}

// FastTimeouts suit tests: failures are detected within about a second.
func FastTimeouts() Timeouts {
	return Timeouts{
		Heartbeat:              time.Second,
		AllocationInterval:     50 * time.Millisecond,
		AgentPing:              100 * time.Millisecond,
		MaxAgentPings:          3,
		ExecutorRegistration:   10 * time.Second,
		ExecutorReregistration: 2 * time.Second,
		ExecutorShutdownGrace:  2 * time.Second,
		UpdateRetryMin:         200 * time.Millisecond,
		UpdateRetryMax:         2 * time.Second,
		ExecutorHeartbeat:      30 * time.Minute,
		AgentReregistration:    500 * time.Millisecond,
		// No 503 phase: tests that want one set it (it ends as soon as the
		// agents are back, which would make a SUBSCRIBE right after
		// RestartMaster racy).
		MasterRecovery: 0,
	}
}

// MasterConfig configures the master.
type MasterConfig struct {
	// Listen is the master's address, e.g. 127.0.0.1:5050.
	Listen   string
	Timeouts Timeouts
	// Version is what /version reports (Mesos 1.10 semantics by default).
	Version string
	// Credentials, when set, make the master authenticate schedulers with
	// HTTP basic authentication against these principals and secrets, as
	// Mesos does with --authenticate_http_frameworks and --credentials.
	Credentials map[string]string
	// registry is what survives the master: the agents admitted, unreachable
	// and gone. The cluster hands the same one to every master it elects;
	// nil means a new, empty one.
	registry *registry
}

// AgentConfig configures one agent.
type AgentConfig struct {
	// Hostname is what offers and AgentInfo report, e.g. agent-1.
	Hostname string
	// Listen is the agent's HTTP address (executor API), e.g. 127.0.0.1:0.
	Listen string
	// Resources in Mesos' syntax: cpus:4;mem:8192;disk:65536;ports:[31000-32000].
	Resources string
	// Attributes in Mesos' syntax: rack:r1;zone:eu-1.
	Attributes string
	// WorkDir holds sandboxes, volumes and checkpoints; it survives restarts.
	WorkDir  string
	Timeouts Timeouts
	// Launcher starts executor processes; nil means plain local processes.
	Launcher Launcher
}
