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
)

// declineFilter keeps offers away while Mysos has nothing to launch; SUPPRESS
// does the same for the whole role, and REVIVE undoes both.
const declineFilter = time.Minute

// handler dispatches one subscription's events.
func (f *Framework) handler(caller calls.Caller) events.Handler {
	return eventrules.New(
		f.noteEvent,
		controller.LiftErrors().DropOnError(),
	).Handle(events.Handlers{
		scheduler.Event_SUBSCRIBED: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.subscribedEvent(ctx, caller, e.GetSubscribed())
		}),
		scheduler.Event_OFFERS: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.declineAll(ctx, caller, e.GetOffers().GetOffers())
		}),
		scheduler.Event_UPDATE: controller.AckStatusUpdates(caller).AndThen().HandleF(func(ctx context.Context, e *scheduler.Event) error {
			st := e.GetUpdate().GetStatus()
			f.log.Debug("task status", "task", st.TaskID.Value, "state", st.GetState().String(), "reason", st.GetReason().String())
			return nil
		}),
		scheduler.Event_ERROR: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			return f.errorEvent(ctx, e.GetError().GetMessage())
		}),
	}.Otherwise(events.HandlerFunc(func(_ context.Context, e *scheduler.Event) error {
		f.log.Debug("mesos event", "type", e.GetType().String())
		return nil
	})))
}

// subscribedEvent persists the framework id, then reconciles and suppresses
// offers, since nothing is pending yet.
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
	f.mu.Unlock()
	f.setState(true, "subscribed as framework "+id)
	f.log.Info("subscribed to Mesos", "framework", id, "resumed", id == previous,
		"master", fmt.Sprintf("%s:%d", s.GetMasterInfo().GetHostname(), s.GetMasterInfo().GetPort()))
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

func (f *Framework) declineAll(ctx context.Context, caller calls.Caller, offers []mesos.Offer) error {
	if len(offers) == 0 {
		return nil
	}
	ids := make([]mesos.OfferID, len(offers))
	for i := range offers {
		ids[i] = offers[i].ID
	}
	return calls.CallNoData(ctx, caller, calls.Decline(ids...).With(calls.RefuseSeconds(declineFilter)))
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
