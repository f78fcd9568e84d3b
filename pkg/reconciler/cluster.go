package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// ClusterStore is what the reconciler needs from storage.
type ClusterStore interface {
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
	UpdateStatus(ctx context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error)
}

// MesosState reports whether the scheduler is subscribed to a Mesos master,
// and if not, why.
type MesosState interface {
	Subscribed() (ok bool, reason string)
}

// Condition reasons the reconciler writes.
const (
	ReasonSpecAccepted     = "SpecAccepted"
	ReasonMesosUnavailable = "MesosUnavailable"
	ReasonLaunchPending    = "LaunchPending"
)

// resyncPeriod re-checks every cluster even when nothing wakes it, the safety
// net of a level-triggered loop.
const resyncPeriod = 30 * time.Second

// ClusterReconciler reconciles one MySQLCluster per call.
type ClusterReconciler struct {
	Store ClusterStore
	Mesos MesosState
	Now   func() time.Time
}

// Reconcile implements Reconciler: observe the cluster, decide the status it
// should have, write it if it differs.
func (r *ClusterReconciler) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok {
		return Result{}, fmt.Errorf("malformed cluster key %q", key)
	}
	c, err := r.Store.Get(ctx, ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, nil // deleted: nothing left to do
	}
	if err != nil {
		return Result{}, err
	}
	want := r.decideStatus(c)
	_, err = r.Store.UpdateStatus(ctx, ns, name, c.Metadata.UID, func(st *spec.ClusterStatus) error {
		r.applyStatus(st, want)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, nil // deleted or replaced while we looked
	}
	return Result{RequeueAfter: resyncPeriod}, err
}

// desiredStatus is the decision of one pass.
type desiredStatus struct {
	phase      spec.Phase
	generation int64
	conditions []spec.Condition
}

// decideStatus is pure: the status c should carry given what is observed.
func (r *ClusterReconciler) decideStatus(c *spec.MySQLCluster) desiredStatus {
	gen := c.Metadata.Generation
	d := desiredStatus{phase: spec.PhasePending, generation: gen}
	d.conditions = append(d.conditions, spec.Condition{
		Type: spec.ConditionAccepted, Status: spec.ConditionTrue, Reason: ReasonSpecAccepted,
		Message: fmt.Sprintf("generation %d is valid and observed by the scheduler", gen), ObservedGeneration: gen,
	})
	ready := spec.Condition{Type: spec.ConditionReady, Status: spec.ConditionFalse, ObservedGeneration: gen}
	if ok, reason := r.Mesos.Subscribed(); !ok {
		ready.Reason = ReasonMesosUnavailable
		ready.Message = "no Mesos master is connected, so no instance can be launched: " + reason
	} else {
		ready.Reason = ReasonLaunchPending
		ready.Message = "subscribed to Mesos; this version does not launch instances yet"
	}
	d.conditions = append(d.conditions, ready)
	if c.Metadata.DeletionTimestamp != nil {
		d.phase = spec.PhaseDeleting
	}
	return d
}

func (r *ClusterReconciler) applyStatus(st *spec.ClusterStatus, want desiredStatus) {
	now := r.now()
	st.Phase = want.phase
	st.ObservedGeneration = want.generation
	for _, c := range want.conditions {
		st.SetCondition(c, now)
	}
}

func (r *ClusterReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC().Truncate(time.Second)
}
