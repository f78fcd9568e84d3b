// Package reconciler holds Mysos' level-triggered control loop: it compares
// the clusters users asked for (specs in the store) with what exists and
// acts, one step per pass, until they agree.
//
// The contract follows controller-runtime: Reconcile(ctx, key) observes the
// whole state behind key, decides, performs at most one action and returns
// when to look again. It never relies on what event woke it.
package reconciler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mysos-project/mysos/pkg/metrics"
)

// Result tells the controller when to reconcile a key again.
type Result struct {
	// RequeueAfter > 0 reconciles the key again after that long.
	RequeueAfter time.Duration
	// Requeue reconciles the key again at once: the pass acted, and the
	// next one observes the result.
	Requeue bool
}

// Reconciler brings one cluster ("namespace/name") closer to its spec.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// ReconcileTimeout bounds one pass, so a hung call cannot stall a worker.
const ReconcileTimeout = time.Minute

// Controller feeds keys from a watch into a queue and runs workers over it.
type Controller struct {
	Reconciler Reconciler
	Queue      *Queue
	Workers    int
	Log        *slog.Logger
	// Metrics, when set, times the passes.
	Metrics *metrics.Reconciles

	mu    sync.Mutex
	known map[string]bool // every key seen, for ResyncAll
}

// NewController returns a controller with sensible backoff (100 ms doubling to 1 min).
func NewController(r Reconciler, workers int, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{Reconciler: r, Queue: NewQueue(100*time.Millisecond, time.Minute), Workers: max(workers, 1), Log: log}
}

// Run processes keys until ctx ends. keys is typically store.WatchKeys.
func (c *Controller) Run(ctx context.Context, keys <-chan string) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case key, ok := <-keys:
				if !ok {
					return
				}
				c.remember(key)
				c.Queue.Add(key)
			case <-ctx.Done():
				return
			}
		}
	})
	for range c.Workers {
		wg.Go(func() { c.work(ctx) })
	}
	<-ctx.Done()
	c.Queue.ShutDown()
	wg.Wait()
}

func (c *Controller) remember(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]bool{}
	}
	c.known[key] = true
}

// ResyncAll queues every key seen so far, for a change of the world outside
// the store (the Mesos subscription came or went) that every cluster must
// look at. Keys of deleted clusters reconcile to a no-op.
func (c *Controller) ResyncAll() {
	c.mu.Lock()
	keys := make([]string, 0, len(c.known))
	for k := range c.known {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.Queue.Add(k)
	}
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, ok := c.Queue.Get()
		if !ok {
			return
		}
		c.reconcileOne(ctx, key)
		c.Queue.Done(key)
	}
}

func (c *Controller) reconcileOne(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, ReconcileTimeout)
	defer cancel()
	start := time.Now()
	res, err := c.Reconciler.Reconcile(ctx, key)
	c.Metrics.Pass(time.Since(start), err)
	switch {
	case err != nil:
		c.Log.Warn("reconcile failed; retrying with backoff", "cluster", key, "err", err)
		c.Queue.AddRateLimited(key)
	case res.Requeue:
		// The next pass decides when to look again.
		c.Queue.Forget(key)
		c.Queue.CancelAfter(key)
		c.Queue.Add(key)
	case res.RequeueAfter > 0:
		c.Queue.Forget(key)
		c.Queue.AddAfter(key, res.RequeueAfter)
	default:
		c.Queue.Forget(key)
		c.Queue.CancelAfter(key)
	}
}
