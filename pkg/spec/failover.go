package spec

import (
	"fmt"
	"time"
)

// FailoverSpec says how Mysos replaces a failed primary. Every field has a
// default, so an empty or missing spec.failover means automatic failover.
type FailoverSpec struct {
	// Automatic fails over without a human when the primary fails.
	Automatic *bool `json:"automatic,omitempty"`
	// UnreachableTimeout is how long a primary whose task still runs may
	// not answer over SQL, while every replica reports it lost too, before
	// it counts as failed. A dead task counts at once.
	UnreachableTimeout Duration `json:"unreachableTimeout,omitempty"`
	// BlockWindow is anti-flapping: after an automatic failover, no second
	// one happens within this window unless the last is acknowledged
	// (mysosctl failover ack).
	BlockWindow Duration `json:"blockWindow,omitempty"`
	// ReseedErrant re-seeds a former primary holding transactions nobody
	// else has (never acknowledged to a client) from the new primary,
	// moving its old data aside. Off, it waits for mysosctl reseed.
	ReseedErrant bool `json:"reseedErrant,omitempty"`
}

// Failover defaults.
const (
	DefaultUnreachableTimeout = Duration("10s")
	DefaultBlockWindow        = Duration("5m")
)

// Bounds of the failover durations.
const (
	minUnreachableTimeout = time.Second
	maxFailoverDuration   = 24 * time.Hour
)

// Duration is a span of time in Go's notation: "500ms", "10s", "5m", "1h30m".
type Duration string

// Value is the parsed duration; an empty Duration is zero.
func (d Duration) Value() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write a number with a unit, e.g. 10s, 5m or 1h", string(d))
	}
	return v, nil
}

// OrDefault is the parsed duration, or def when it is empty or invalid
// (stored specs are valid; this is for readers that must not fail).
func (d Duration) OrDefault(def Duration) time.Duration {
	if v, err := d.Value(); err == nil && v > 0 {
		return v
	}
	v, _ := def.Value()
	return v
}

func setFailoverDefaults(f *FailoverSpec) {
	if f.Automatic == nil {
		f.Automatic = ptr(true)
	}
	if f.UnreachableTimeout == "" {
		f.UnreachableTimeout = DefaultUnreachableTimeout
	}
	if f.BlockWindow == "" {
		f.BlockWindow = DefaultBlockWindow
	}
}

func validateFailover(path string, f *FailoverSpec) ErrorList {
	var errs ErrorList
	if e := validateDuration(childPath(path, "unreachableTimeout"), f.UnreachableTimeout, minUnreachableTimeout); e != nil {
		errs = append(errs, e)
	}
	if e := validateDuration(childPath(path, "blockWindow"), f.BlockWindow, 0); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func validateDuration(path string, d Duration, least time.Duration) *FieldError {
	v, err := d.Value()
	switch {
	case err != nil:
		return invalidErr(path, string(d), err.Error())
	case v < least || v > maxFailoverDuration:
		return invalidErr(path, string(d), fmt.Sprintf("must be between %s and %s", least, maxFailoverDuration))
	}
	return nil
}

// Operation kinds.
const (
	OperationFailover   = "Failover"
	OperationSwitchover = "Switchover"
)

// Operation is a failover or switchover in progress, kept in the status so
// that a scheduler that dies midway resumes it where it stopped.
type Operation struct {
	// ID names the operation in events and logs.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// From is the primary being replaced.
	From string `json:"from"`
	// To is the instance being promoted: asked for by a switchover, or
	// chosen by a failover once the replicas are fenced.
	To string `json:"to,omitempty"`
	// Step is where the operation stands (docs/failover.md).
	Step string `json:"step"`
	// Reason says why the operation started.
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// Blocked says what keeps the operation from its next step, if anything.
	Blocked string `json:"blocked,omitempty"`
}

// FailoverRecord remembers the last automatic failover, for anti-flapping.
type FailoverRecord struct {
	ID   string    `json:"id"`
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	// Acknowledged by a human (mysosctl failover ack): the block window no
	// longer applies.
	Acknowledged bool `json:"acknowledged,omitempty"`
}

// SwitchoverRequest is the body of a switchover request; To may be empty,
// and Mysos then picks the most up-to-date healthy replica.
type SwitchoverRequest struct {
	To string `json:"to,omitempty"`
}

// EventListKind is the kind of an events answer.
const EventListKind = "EventList"

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event records something significant that happened to a cluster: a step
// of a failover or switchover, an errant instance, a refusal. Mysos keeps a
// bounded history per cluster.
type Event struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	Cluster   string    `json:"cluster"`
	// Type is Normal or Warning.
	Type   string `json:"type"`
	Reason string `json:"reason"`
	// Operation is the id of the failover or switchover the event is a
	// step of, if any; Elapsed is the time since that operation started.
	Operation string   `json:"operation,omitempty"`
	Elapsed   Duration `json:"elapsed,omitempty"`
	Instance  string   `json:"instance,omitempty"`
	Message   string   `json:"message"`
}

// EventList is a list of events, oldest first.
type EventList struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Items      []Event `json:"items"`
}

// Operation steps, in order (docs/failover.md). A failover starts at
// StepFencing, a switchover at StepRequested.
const (
	StepRequested   = "Requested"   // a switchover waits for the reconciler
	StepFencing     = "Fencing"     // failover: cut the old primary off (replica IO threads, kill, read-only)
	StepDemoting    = "Demoting"    // switchover: the primary read-only, its clients disconnected
	StepElecting    = "Electing"    // choose the replica that has every acknowledged transaction
	StepCatchingUp  = "CatchingUp"  // the candidate applies everything it received
	StepConfiguring = "Configuring" // the candidate is status.currentPrimary; replicas repointed, writes opened
)
