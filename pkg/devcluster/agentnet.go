package devcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Each dev cluster gives its agents addresses of their own in a loopback
// block 127.B.0.0/16 (B from 1 to 254; 127.0.x.x is the masters'), so that
// tasks on different agents may use the same ports, as on real machines,
// and two dev clusters on one machine (parallel tests, a demo beside a test
// run) never share an address. A block is leased with an exclusive flock on
// a file in the temporary directory, held for the cluster's life: the
// kernel releases it even when the process dies. A cluster prefers the
// block its work dir used last, so a restarted dev cluster keeps its
// agents' addresses.

// agentNetFile in the work dir remembers the block.
const agentNetFile = "agent-net"

// agentNet is a leased block.
type agentNet struct {
	block int
	lock  *os.File
}

// Address is agent n's address (n from 1): 127.B.0.n, then 127.B.1.1 for
// agent 255, and so on.
func (a *agentNet) Address(n int) string {
	return fmt.Sprintf("127.%d.%d.%d", a.block, (n-1)/254, (n-1)%254+1)
}

func (a *agentNet) release() {
	if a != nil && a.lock != nil {
		a.lock.Close() // closing the descriptor drops the flock
	}
}

// leaseAgentNet takes the work dir's previous block if it is free, else the
// first free one.
func leaseAgentNet(workDir string) (*agentNet, error) {
	dir := filepath.Join(os.TempDir(), "mysos-devcluster-nets")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("agent addresses: %w", err)
	}
	candidates := make([]int, 0, 255)
	remember := filepath.Join(workDir, agentNetFile)
	if b, err := os.ReadFile(remember); workDir != "" && err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 1 && n <= 254 {
			candidates = append(candidates, n)
		}
	}
	for n := 1; n <= 254; n++ {
		candidates = append(candidates, n)
	}
	for _, n := range candidates {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(n)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return nil, fmt.Errorf("agent addresses: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue
			}
			return nil, fmt.Errorf("agent addresses: lock %s: %w", f.Name(), err)
		}
		if workDir != "" {
			_ = os.WriteFile(remember, []byte(strconv.Itoa(n)+"\n"), 0o644)
		}
		return &agentNet{block: n, lock: f}, nil
	}
	return nil, errors.New("agent addresses: all 254 loopback blocks are leased by other dev clusters")
}
