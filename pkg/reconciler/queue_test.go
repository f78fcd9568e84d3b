package reconciler

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
)

func TestQueueDeduplicatesPendingKeys(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	for range 5 {
		q.Add("a")
	}
	q.Add("b")
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d after adding a five times and b once; want 2", n)
	}
}

// TestQueueNeverHandsOneKeyToTwoWorkers: a key added while a worker holds it
// waits until Done, then comes back exactly once.
func TestQueueNeverHandsOneKeyToTwoWorkers(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	q.Add("a")
	key, _ := q.Get()
	q.Add("a")
	q.Add("a")
	if n := q.Len(); n != 0 {
		t.Fatalf("a key being processed was queued again (Len %d)", n)
	}
	q.Done(key)
	if n := q.Len(); n != 1 {
		t.Fatalf("after Done, Len = %d; want the re-added key once", n)
	}
}

func TestQueueConcurrentWorkersSeeEachKeyAlone(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	var inFlight sync.Map
	var overlaps, processed atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				key, ok := q.Get()
				if !ok {
					return
				}
				if _, busy := inFlight.LoadOrStore(key, true); busy {
					overlaps.Add(1)
				}
				processed.Add(1)
				inFlight.Delete(key)
				q.Done(key)
			}
		})
	}
	for i := range 1000 {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	testutil.WaitFor(t, 10*time.Second, "the queue to drain", func() bool { return q.Len() == 0 })
	q.ShutDown()
	wg.Wait()
	if overlaps.Load() > 0 {
		t.Fatalf("%d times two workers held the same key", overlaps.Load())
	}
	if processed.Load() == 0 {
		t.Fatal("nothing was processed")
	}
}

func TestQueueBackoffDoublesAndForgetResets(t *testing.T) {
	q := NewQueue(10*time.Millisecond, 40*time.Millisecond)
	for n, want := range []time.Duration{10, 20, 40, 40, 40} {
		if got := q.backoff(n); got != want*time.Millisecond {
			t.Errorf("backoff after %d failures = %v, want %v", n, got, want*time.Millisecond)
		}
	}
	if got := q.backoff(100); got != 40*time.Millisecond {
		t.Errorf("backoff after 100 failures = %v, want the cap", got)
	}
	for range 4 {
		q.AddRateLimited("a")
	}
	q.mu.Lock()
	failures := q.failures["a"]
	q.mu.Unlock()
	if failures != 4 {
		t.Fatalf("failures = %d, want 4", failures)
	}
	q.Forget("a")
	q.mu.Lock()
	_, still := q.failures["a"]
	q.mu.Unlock()
	if still {
		t.Fatal("Forget kept the failure count")
	}
	// The key arrives after its (capped) backoff.
	key, ok := q.Get()
	if !ok || key != "a" {
		t.Fatalf("Get = %q, %v", key, ok)
	}
}

func TestQueueShutDownReleasesWaitingWorkers(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	done := make(chan bool)
	go func() { _, ok := q.Get(); done <- ok }()
	q.ShutDown()
	if ok := <-done; ok {
		t.Fatal("Get returned a key after shutdown")
	}
}

// A key has one delayed add: the latest replaces the one pending (a long
// delay pending, a short one comes: the key arrives soon; a short one
// pending, a long one comes: only the long one stays), and CancelAfter
// drops it.
func TestQueueDelayedAddReplacesThePendingOne(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	q.AddAfter("a", time.Hour)
	q.AddAfter("a", 10*time.Millisecond)
	if n := q.Delayed(); n != 1 {
		t.Fatalf("%d delayed adds pending; want 1", n)
	}
	if key, ok := q.Get(); !ok || key != "a" {
		t.Fatalf("Get = %q, %v", key, ok)
	}
	q.Done("a")
	if n := q.Delayed(); n != 0 {
		t.Fatalf("%d delayed adds pending after the add fired; want 0", n)
	}
	q.AddAfter("b", time.Millisecond)
	q.AddAfter("b", time.Hour)
	q.AddAfter("c", time.Hour)
	if n := q.Delayed(); n != 2 {
		t.Fatalf("%d delayed adds pending; want 2 (b and c)", n)
	}
	q.CancelAfter("b")
	if n := q.Delayed(); n != 1 {
		t.Fatalf("%d delayed adds pending after CancelAfter; want 1", n)
	}
	q.ShutDown()
	if n := q.Delayed(); n != 0 {
		t.Fatalf("%d delayed adds pending after ShutDown", n)
	}
}

// requeueAfterHour counts passes and always asks to look again in an hour.
type requeueAfterHour struct{ passes atomic.Int32 }

func (r *requeueAfterHour) Reconcile(context.Context, string) (Result, error) {
	r.passes.Add(1)
	return Result{RequeueAfter: time.Hour}, nil
}

// However often events wake a key, the controller keeps one periodic look
// at it pending, not one per pass (which made idle clusters reconcile ever
// more often).
func TestControllerKeepsOnePeriodicLookPerKey(t *testing.T) {
	r := &requeueAfterHour{}
	c := NewController(r, 2, slog.New(slog.DiscardHandler))
	keys := make(chan string)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, keys); close(done) }()
	for i := range 10 {
		keys <- "ns/a"
		keys <- "ns/b"
		testutil.WaitFor(t, 10*time.Second, "both keys reconciled", func() bool { return r.passes.Load() >= int32(2*(i+1)) })
	}
	testutil.WaitFor(t, 10*time.Second, "the last passes to schedule their looks", func() bool { return c.Queue.Delayed() == 2 })
	if n := c.Queue.Delayed(); n != 2 {
		t.Fatalf("%d delayed looks pending for 2 keys after %d passes", n, r.passes.Load())
	}
	cancel()
	<-done
}
