package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/eventrules"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/events"

	"github.com/mysos-project/mysos/pkg/metrics"
)

// declineFilter keeps offers away while Mysos has nothing to launch; SUPPRESS
// does the same for the whole role, and REVIVE undoes both. While something
// is pending, unused offers come back after pendingDeclineFilter, since what
// did not fit may fit with the next offer of the same agent.
const (
	declineFilter        = time.Minute
	pendingDeclineFilter = 5 * time.Second
)

// handler dispatches one subscription's events.
func (f *Framework) handler(caller calls.Caller) events.Handler {
	ack := controller.AckStatusUpdates(caller)
	return eventrules.New(
		f.noteEvent,
		controller.LiftErrors().DropOnError(),
	).Handle(events.Handlers{
		scheduler.Event_SUBSCRIBED: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.subscribedEvent(ctx, caller, e.GetSubscribed())
		}),
		scheduler.Event_OFFERS: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.offersEvent(ctx, caller, e.GetOffers().GetOffers())
		}),
		scheduler.Event_UPDATE: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			f.updateEvent(e.GetUpdate().GetStatus())
			return ack.HandleEvent(ctx, e)
		}),
		scheduler.Event_ERROR: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.errorEvent(ctx, e.GetError().GetMessage())
		}),
	}.Otherwise(events.HandlerFunc(func(_ context.Context, e *scheduler.Event) error {
		f.log.Debug("mesos event", "type", e.GetType().String())
		return nil
	})))
}

// subscribedEvent persists the framework id, then reconciles: explicitly
// every task the launcher knows of (so that tasks lost while nobody
// listened are reported), implicitly everything else.
func (f *Framework) subscribedEvent(ctx context.Context, caller calls.Caller, s *scheduler.Event_Subscribed) error {
	id := s.GetFrameworkID().GetValue()
	previous := f.ID()
	if id != previous {
		if err := f.ids.SetFrameworkID(ctx, id); err != nil {
			// Without the id a restart would orphan every task: give up this
			// subscription rather than run on unrecorded.
			return fmt.Errorf("persist framework id %s: %w", id, err)
		}
	}
	f.mu.Lock()
	f.frameworkID = id
	f.caller = caller
	f.suppressed = false
	f.mu.Unlock()
	f.setState(true, "subscribed as framework "+id)
	f.log.Info("subscribed to Mesos", "framework", id, "resumed", id == previous,
		"master", fmt.Sprintf("%s:%d", s.GetMasterInfo().GetHostname(), s.GetMasterInfo().GetPort()))
	if f.cfg.Offers != nil {
		known, err := f.cfg.Offers.KnownTasks(ctx)
		if err != nil {
			return fmt.Errorf("list known tasks for reconciliation: %w", err)
		}
		if err := f.ReconcileTasks(ctx, known); err != nil {
			return fmt.Errorf("explicit reconciliation: %w", err)
		}
	}
	// Implicit reconciliation: Mesos answers with every task it knows of ours.
	if err := calls.CallNoData(ctx, caller, calls.Reconcile()); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	go f.reconcilePeriodically(ctx, caller)
	f.dog.seen()
	heartbeat := time.Duration(s.GetHeartbeatIntervalSeconds() * float64(time.Second))
	go f.dog.watch(ctx, heartbeat, func() {
		f.log.Warn("no event from the Mesos master for too long; re-subscribing",
			"silence", (missedHeartbeats * heartbeat).String())
		f.restart()
	})
	if f.cfg.Offers == nil {
		return f.suppress(ctx, caller)
	}
	return nil
}

// updateEvent records a status update and tells whoever listens.
func (f *Framework) updateEvent(st mesos.TaskStatus) {
	t, before, known := f.noteStatus(st)
	f.log.Debug("task status", "task", t.ID, "state", t.State.String(), "reason", t.Reason, "message", t.Message)
	if known && before.Terminal() && !t.Terminal() {
		// The table now says what runs; whoever acted on the terminal
		// state (the reconciler) sees the task again.
		f.log.Warn("a task reported ended is alive", "task", t.ID, "state", t.State.String(),
			"was", before.State.String(), "reason", before.Reason, "message", before.Message)
	}
	if t.Terminal() {
		f.cfg.Metrics.Ended(t.State.String(), t.Reason)
	}
	if f.cfg.OnUpdate != nil {
		f.cfg.OnUpdate(t)
	}
}

// offersEvent lets the handler use the offers and declines the rest.
func (f *Framework) offersEvent(ctx context.Context, caller calls.Caller, offers []mesos.Offer) error {
	if len(offers) == 0 {
		return nil
	}
	var accept map[string][]mesos.Offer_Operation
	wantMore := false
	revives := f.revives()
	if f.cfg.Offers != nil {
		accept, wantMore = f.cfg.Offers.HandleOffers(ctx, offers)
	}
	filter := declineFilter
	if wantMore {
		filter = pendingDeclineFilter
	}
	var decline []mesos.OfferID
	for _, o := range offers {
		ops := accept[o.ID.Value]
		if len(ops) == 0 {
			decline = append(decline, o.ID)
			continue
		}
		f.noteLaunched(ops)
		f.cfg.Metrics.Offers(metrics.OfferUsed, 1)
		call := calls.Accept(calls.OfferOperations(ops).WithOffers(o.ID)).With(calls.RefuseSeconds(filter))
		if err := calls.CallNoData(ctx, caller, call); err != nil {
			// The launched tasks stay TASK_STAGING in the table; the
			// reconciler asks Mesos about them after a while.
			f.log.Warn("accept failed", "offer", o.ID.Value, "agent", o.AgentID.Value, "err", err)
		}
	}
	f.cfg.Metrics.Offers(metrics.OfferDeclined, len(decline))
	if len(decline) > 0 {
		if err := calls.CallNoData(ctx, caller, calls.Decline(decline...).With(calls.RefuseSeconds(filter))); err != nil {
			return fmt.Errorf("decline: %w", err)
		}
	}
	return f.afterOffers(ctx, caller, wantMore, revives)
}

// afterOffers settles the offer flow once offers were accepted or declined.
// A REVIVE sent while the handler worked (revives moved) means something
// became pending that the handler did not see, and the declines just sent
// set filters that REVIVE had meant to clear: revive again. Otherwise, with
// nothing wanted, SUPPRESS. reviveMu orders this against Revive, so a
// SUPPRESS can never overtake a REVIVE.
func (f *Framework) afterOffers(ctx context.Context, caller calls.Caller, wantMore bool, revives uint64) error {
	f.reviveMu.Lock()
	defer f.reviveMu.Unlock()
	if f.revives() != revives {
		f.noteRevive()
		return calls.CallNoData(ctx, caller, calls.Revive())
	}
	if !wantMore {
		return f.suppress(ctx, caller)
	}
	return nil
}

// suppress stops offers until the next REVIVE.
func (f *Framework) suppress(ctx context.Context, caller calls.Caller) error {
	f.mu.Lock()
	already := f.suppressed
	f.suppressed = true
	f.mu.Unlock()
	if already {
		return nil
	}
	return calls.CallNoData(ctx, caller, calls.Suppress())
}

// reconcilePeriodically asks for implicit reconciliation until the
// subscription ends (ctx is the subscription's).
func (f *Framework) reconcilePeriodically(ctx context.Context, caller calls.Caller) {
	tick := time.NewTicker(f.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			callCtx, cancel := context.WithTimeout(ctx, f.cfg.CallTimeout)
			if err := calls.CallNoData(callCtx, caller, calls.Reconcile()); err != nil {
				f.log.Warn("periodic reconciliation failed", "err", err)
			}
			cancel()
		}
	}
}

// errorEvent handles ERROR: Mesos closes the stream after it. When Mesos
// removed the framework (failover timeout passed, or torn down), the stored
// id is useless and the next subscription starts a new framework.
func (f *Framework) errorEvent(ctx context.Context, msg string) error {
	f.log.Warn("Mesos sent an error", "message", msg)
	if strings.Contains(msg, "removed") {
		if err := f.ids.SetFrameworkID(ctx, ""); err != nil {
			return fmt.Errorf("forget removed framework id: %w", err)
		}
		f.mu.Lock()
		f.frameworkID = ""
		f.mu.Unlock()
		f.restart()
	}
	return fmt.Errorf("mesos error: %s", msg)
}

// noteEvent feeds the watchdog: any event, heartbeats included, proves the
// stream alive.
func (f *Framework) noteEvent(ctx context.Context, e *scheduler.Event, err error, ch eventrules.Chain) (context.Context, *scheduler.Event, error) {
	f.dog.seen()
	return ch(ctx, e, err)
}

// restart ends the current subscription; Run subscribes again.
func (f *Framework) restart() {
	f.mu.Lock()
	restart := f.restartSubscription
	f.mu.Unlock()
	if restart != nil {
		restart()
	}
}

// subscriptionEnded records why the subscription is gone.
func (f *Framework) subscriptionEnded(err error) {
	reason := "subscription to the Mesos master ended"
	if err != nil {
		reason = "cannot subscribe to a Mesos master: " + err.Error()
	}
	if f.isSubscribed() {
		f.log.Warn("Mesos subscription lost; re-subscribing", "err", err)
	}
	f.setState(false, reason)
}

func (f *Framework) isSubscribed() bool {
	ok, _ := f.Subscribed()
	return ok
}
