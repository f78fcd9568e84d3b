package framework

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
)

// blackhole is a TCP proxy that can stop delivering bytes in both directions
// while keeping the connections open: a master that went silent without the
// network telling anyone.
type blackhole struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	b.wg.Go(b.accept)
	t.Cleanup(b.close)
	return b
}

func (b *blackhole) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp4", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, up)
		b.mu.Unlock()
		b.wg.Go(func() { b.pipe(up, c) })
		b.wg.Go(func() { b.pipe(c, up) })
	}
}

// pipe copies src to dst, dropping what arrives while frozen.
func (b *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// TestResubscribesWhenTheMasterGoesSilent: heartbeats stop arriving while
// the stream stays open, so after five missed ones the framework gives the
// subscription up, and subscribes again, as the same framework, once the
// master can be reached.
func TestResubscribesWhenTheMasterGoesSilent(t *testing.T) {
	c := startCluster(t) // FastTimeouts: a heartbeat every second
	master, err := url.Parse(c.MasterURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newBlackhole(t, master.Host)
	fw, err := New(Config{
		Masters: []string{"http://" + proxy.ln.Addr().String()}, Role: "mysos", FailoverTimeout: time.Hour,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CallTimeout: 2 * time.Second,
	}, &memIDs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runFramework(t, fw)
	waitSubscribed(t, fw)
	id := fw.ID()

	proxy.frozen.Store(true)
	testutil.WaitFor(t, 20*time.Second, "the silent subscription to be given up", func() bool {
		ok, _ := fw.Subscribed()
		return !ok
	})
	proxy.frozen.Store(false)
	waitSubscribed(t, fw)
	if fw.ID() != id {
		t.Fatalf("re-subscribed as %s, want %s", fw.ID(), id)
	}
}
