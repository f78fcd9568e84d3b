package reconciler

import (
	"sync"
	"time"
)

// Queue is a keyed work queue in the manner of client-go's workqueue: a key
// added many times before a worker takes it is processed once, and a key
// being processed is never handed to a second worker; if it is added
// meanwhile, it is processed again afterwards. Failed keys back off
// exponentially.
//
// A key has at most one delayed add: the latest AddAfter replaces the one
// pending, since it comes from the key's latest pass, which knows best when
// to look again. (Independent timers per call made every event start
// another periodic chain of passes, so an idle cluster was reconciled ever
// more often: docs/benchmarks.md.)
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	ready      []string
	dirty      map[string]bool // waiting in ready, or to be re-queued when Done
	processing map[string]bool
	failures   map[string]int
	delayed    map[string]*time.Timer
	shutdown   bool

	baseDelay, maxDelay time.Duration
}

// NewQueue returns a queue whose failed keys wait baseDelay, doubling up to maxDelay.
func NewQueue(baseDelay, maxDelay time.Duration) *Queue {
	q := &Queue{
		dirty:      map[string]bool{},
		processing: map[string]bool{},
		failures:   map[string]int{},
		delayed:    map[string]*time.Timer{},
		baseDelay:  baseDelay,
		maxDelay:   maxDelay,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add marks key for processing.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return
	}
	q.ready = append(q.ready, key)
	q.cond.Signal()
}

// AddAfter adds key once d has passed, replacing the key's pending delayed
// add, if any.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.CancelAfter(key)
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if t := q.delayed[key]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		current := q.delayed[key] == t
		if current {
			delete(q.delayed, key)
		}
		q.mu.Unlock()
		if current {
			q.Add(key)
		}
	})
	q.delayed[key] = t
}

// CancelAfter drops key's pending delayed add.
func (q *Queue) CancelAfter(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.delayed[key]; t != nil {
		t.Stop()
		delete(q.delayed, key)
	}
}

// Delayed is the number of keys with a delayed add pending.
func (q *Queue) Delayed() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.delayed)
}

// AddRateLimited adds key after its backoff, which doubles with each call
// until Forget.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, q.backoff(n))
}

// backoff is the delay after n earlier failures: baseDelay doubled n times,
// capped at maxDelay.
func (q *Queue) backoff(n int) time.Duration {
	delay := q.baseDelay << min(n, 30)
	if delay > q.maxDelay || delay <= 0 {
		return q.maxDelay
	}
	return delay
}

// Forget resets key's backoff after a success.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Get blocks until a key is ready; ok is false once the queue shuts down.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	key, q.ready = q.ready[0], q.ready[1:]
	q.processing[key] = true
	delete(q.dirty, key)
	return key, true
}

// Done tells the queue a worker finished key; if it was added meanwhile it is
// queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] && !q.shutdown {
		q.ready = append(q.ready, key)
		q.cond.Signal()
	}
}

// Len is the number of keys ready to be processed.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ready)
}

// ShutDown wakes every waiting Get, which then returns ok=false.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for key, t := range q.delayed {
		t.Stop()
		delete(q.delayed, key)
	}
	q.cond.Broadcast()
}
