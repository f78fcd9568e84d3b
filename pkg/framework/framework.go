// Package framework is Mysos' Mesos framework: it keeps one subscription to
// the Mesos master through mesos-go's v1 HTTP scheduler client (protobuf by
// default, since Mesos 1.11+ sends enum values mesos-go's JSON decoder
// rejects), persists the framework id so a restarted scheduler resumes the
// same framework, re-subscribes with backoff, acknowledges status updates and
// reconciles task state as Mesos' reconciliation rules ask.
//
// It knows nothing about MySQL; the reconciler decides what to launch.
package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/backoff"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/callrules"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/mysos-project/mysos/pkg/metrics"
)

// IDStore persists the framework id (pkg/store keeps it in etcd).
type IDStore interface {
	FrameworkID(ctx context.Context) (string, error)
	SetFrameworkID(ctx context.Context, id string) error
}

// Config configures the framework.
type Config struct {
	// Masters are master URLs such as http://mesos-1:5050; a failed
	// subscription moves on to the next, and 307 redirects are followed to
	// the leading master.
	Masters []string
	Name    string
	// Role is the one Mesos role resources are reserved for.
	Role      string
	Principal string
	Secret    string
	User      string
	// FailoverTimeout is how long Mesos keeps the framework's tasks while no
	// scheduler is subscribed; a restart within it resumes the framework.
	FailoverTimeout time.Duration
	// Codec is "protobuf" (default) or "json".
	Codec string
	// ReconcileInterval spaces implicit reconciliations (Mesos advises
	// periodic ones to catch lost updates).
	ReconcileInterval time.Duration
	// CallTimeout bounds every call; connect and response-header timeouts too.
	CallTimeout time.Duration
	// Backoff bounds the delay between subscription attempts.
	MinBackoff, MaxBackoff time.Duration
	// OnStateChange, when set, is called after the subscription comes or goes.
	OnStateChange func()
	// Offers decides what offers are for; without it every offer is
	// declined and offers are suppressed.
	Offers OfferHandler
	// OnUpdate, when set, is called with every task status update, after
	// the task table has it and before it is acknowledged.
	OnUpdate func(Task)
	// Metrics, when set, counts what the framework sees of Mesos.
	Metrics *metrics.Mesos
}

// Defaults for Config.
const (
	DefaultName              = "mysos"
	DefaultFailoverTimeout   = 7 * 24 * time.Hour
	DefaultReconcileInterval = 5 * time.Minute
	DefaultCallTimeout       = 20 * time.Second
)

// Framework is one Mesos framework subscription, kept alive.
type Framework struct {
	cfg   Config
	ids   IDStore
	log   *slog.Logger
	codec encoding.MediaType

	mu          sync.Mutex
	caller      calls.Caller
	subscribed  bool
	reason      string
	frameworkID string
	master      int // index in cfg.Masters of the master tried last
	// restartSubscription ends the current controller run.
	restartSubscription context.CancelFunc
	dog                 watchdog
	// tasks is the latest known state of every task Mesos told us of.
	tasks map[string]Task
	// suppressed is true after SUPPRESS until the next REVIVE.
	suppressed bool
	// reviveCount counts REVIVE calls, so that a SUPPRESS decided before
	// one is not sent after it.
	reviveCount uint64
	reviveMu    sync.Mutex
}

// New returns a framework; Run subscribes it.
func New(cfg Config, ids IDStore, log *slog.Logger) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("no Mesos master given: pass --master http://HOST:5050")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.FailoverTimeout == 0 {
		cfg.FailoverTimeout = DefaultFailoverTimeout
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 15 * time.Second
	}
	codec := codecs.MediaTypeProtobuf
	switch cfg.Codec {
	case "", "protobuf":
	case "json":
		codec = codecs.MediaTypeJSON
	default:
		return nil, fmt.Errorf("--mesos-codec %q: use protobuf or json", cfg.Codec)
	}
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	if log == nil {
		log = slog.Default()
	}
	return &Framework{cfg: cfg, ids: ids, log: log, codec: codec, reason: "not subscribed yet"}, nil
}

// Subscribed reports whether a subscription is live and, if not, why.
func (f *Framework) Subscribed() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribed, f.reason
}

// ID is the framework id, "" before the first subscription.
func (f *Framework) ID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frameworkID
}

func (f *Framework) setState(subscribed bool, reason string) {
	f.mu.Lock()
	changed := f.subscribed != subscribed
	f.subscribed, f.reason = subscribed, reason
	f.mu.Unlock()
	f.cfg.Metrics.Subscribed(subscribed)
	if changed && f.cfg.OnStateChange != nil {
		f.cfg.OnStateChange()
	}
}

// Run subscribes and keeps the subscription until ctx ends, moving through
// the masters and backing off between attempts.
func (f *Framework) Run(ctx context.Context) error {
	id, err := f.ids.FrameworkID(ctx)
	if err != nil {
		return fmt.Errorf("read the framework id: %w", err)
	}
	f.mu.Lock()
	f.frameworkID = id
	f.mu.Unlock()
	tokens := backoff.Notifier(f.cfg.MinBackoff, f.cfg.MaxBackoff, ctx.Done())
	for ctx.Err() == nil {
		// A fresh client per run: mesos-go's caller keeps subscription
		// state that a cancelled run may leave behind.
		caller := f.newCaller()
		// controller.Run re-subscribes by itself, but keeps its SUBSCRIBE
		// call: when Mesos removed the framework, restartSubscription ends
		// this run so that the next one subscribes as a new framework.
		runCtx, cancel := context.WithCancel(ctx)
		f.mu.Lock()
		f.restartSubscription = cancel
		f.mu.Unlock()
		err := controller.Run(runCtx, f.frameworkInfo(), caller,
			controller.WithEventHandler(f.handler(caller)),
			controller.WithFrameworkID(f.ID),
			controller.WithRegistrationTokens(tokens),
			controller.WithContextPerSubscription(true),
			controller.WithSubscriptionTerminated(f.subscriptionEnded),
		)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			f.log.Error("Mesos subscription loop ended", "err", err)
		}
	}
	f.setState(false, "the scheduler is shutting down")
	return nil
}

// nextMaster rotates through the masters: mesos-go's caller asks for the
// next candidate whenever a subscription attempt fails, and follows 307
// redirects to the leader on its own.
func (f *Framework) nextMaster() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	url := f.cfg.Masters[f.master%len(f.cfg.Masters)]
	f.master++
	return schedulerEndpoint(url)
}

func schedulerEndpoint(master string) string {
	return strings.TrimSuffix(master, "/") + "/api/v1/scheduler"
}

func (f *Framework) newCaller() calls.Caller {
	config := []httpcli.ConfigOpt{httpcli.Timeout(f.cfg.CallTimeout)}
	if f.cfg.Principal != "" && f.cfg.Secret != "" {
		config = append(config, httpcli.BasicAuth(f.cfg.Principal, f.cfg.Secret))
	}
	cli := httpcli.New(
		httpcli.Endpoint(schedulerEndpoint(f.cfg.Masters[0])),
		httpcli.Codec(codecs.ByMediaType[f.codec]),
		httpcli.Do(httpcli.With(config...)),
	)
	caller := httpsched.NewCaller(cli,
		httpsched.EndpointCandidates(f.nextMaster),
		// Fail an attempt after trying each master twice, so the state
		// shows the error; the controller then tries again after backoff.
		httpsched.MaxRedirects(2*len(f.cfg.Masters)),
		httpsched.Listener(func(n httpsched.Notification) {
			f.log.Debug("mesos client", "notification", n.Type.String())
		}),
	)
	// Every call but SUBSCRIBE must name the framework.
	return callrules.New(callrules.WithFrameworkID(f.ID)).Caller(caller)
}

func (f *Framework) frameworkInfo() *mesos.FrameworkInfo {
	failover := f.cfg.FailoverTimeout.Seconds()
	fi := &mesos.FrameworkInfo{
		User:            f.cfg.User,
		Name:            f.cfg.Name,
		Checkpoint:      boolPtr(true),
		FailoverTimeout: &failover,
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
			{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE},
			{Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT},
		},
		Roles: []string{f.cfg.Role},
	}
	if f.cfg.Principal != "" {
		fi.Principal = &f.cfg.Principal
	}
	// The id, when there is one, is added by the controller to each
	// SUBSCRIBE (calls.SubscribeTo).
	return fi
}

func boolPtr(b bool) *bool { return &b }

// currentUser is the OS user executors run as unless --mesos-user says otherwise.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}
