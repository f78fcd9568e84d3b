package devcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// With Config.Isolation "cgroups" the agents isolate executors as Mesos'
// agent does with --isolation=cgroups/cpu,cgroups/mem: each container (an
// executor, or a command task) gets a cgroup with CPU shares and a CFS quota
// from its cpus and a memory limit from its mem. When the kernel kills a
// process of a container for memory, the whole container is destroyed and
// its tasks fail with REASON_CONTAINER_LIMITATION_MEMORY. Cgroups v1 (the
// cpu and memory controllers) are used where mounted; a unified v2
// hierarchy otherwise. Containers' cgroups go under the dev cluster's own
// (nested in the process's current cgroup, so limits around the dev cluster
// still hold) and are removed when the container ends.

// Limits are what a container's resources allow.
type Limits struct {
	CPUs     float64
	MemBytes uint64
}

// cgroupsV1 manages containers' cgroups on cgroup v1's cpu and memory
// controllers.
type cgroupsV1 struct {
	cpuRoot, memRoot string // the dev cluster's own cgroups
	log              *slog.Logger
}

// oomPoll is how often a container's OOM counter is read.
const oomPoll = 50 * time.Millisecond

// newCgroups prepares the dev cluster's cgroups, or says why it cannot.
func newCgroups(name string, log *slog.Logger) (*cgroupsV1, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("cgroups need root")
	}
	cg := &cgroupsV1{log: log}
	for _, c := range []struct {
		controller string
		root       *string
	}{{"cpu", &cg.cpuRoot}, {"memory", &cg.memRoot}} {
		mount := filepath.Join("/sys/fs/cgroup", c.controller)
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			return nil, fmt.Errorf("cgroup v1 controller %s is not mounted at %s", c.controller, mount)
		}
		current, err := currentCgroup(c.controller)
		if err != nil {
			return nil, err
		}
		*c.root = filepath.Join(mount, current, name)
		if err := os.MkdirAll(*c.root, 0o755); err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	cg.removeEmpty() // what a dev cluster killed with -9 left on this block
	return cg, nil
}

// removeEmpty removes the containers' cgroups no process is in any more.
func (cg *cgroupsV1) removeEmpty() {
	for _, root := range []string{cg.cpuRoot, cg.memRoot} {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(root, e.Name())) // fails while in use
			}
		}
	}
}

// currentCgroup is this thread's cgroup path in a v1 controller.
func currentCgroup(controller string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/cgroup", syscall.Gettid()))
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && slicesContains(strings.Split(parts[1], ","), controller) {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("cgroups: this process is in no %s cgroup", controller)
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cgContainer is one container's cgroups.
type cgContainer struct {
	cpu, mem string
}

func (cg *cgroupsV1) create(id string, lim Limits) (*cgContainer, error) {
	ct := &cgContainer{cpu: filepath.Join(cg.cpuRoot, id), mem: filepath.Join(cg.memRoot, id)}
	for _, dir := range []string{ct.cpu, ct.mem} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			ct.remove()
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	shares := max(2, int64(lim.CPUs*1024))
	quota := max(1000, int64(lim.CPUs*100000))
	writes := map[string]string{
		filepath.Join(ct.cpu, "cpu.shares"):        strconv.FormatInt(shares, 10),
		filepath.Join(ct.cpu, "cpu.cfs_period_us"): "100000",
		filepath.Join(ct.cpu, "cpu.cfs_quota_us"):  strconv.FormatInt(quota, 10),
	}
	if lim.MemBytes > 0 {
		writes[filepath.Join(ct.mem, "memory.limit_in_bytes")] = strconv.FormatUint(lim.MemBytes, 10)
	}
	for path, v := range writes {
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			ct.remove()
			return nil, fmt.Errorf("cgroups: %s: %w", path, err)
		}
	}
	return ct, nil
}

// startInside runs start (which forks the container's process) on a thread
// that joined the container's cgroups, so the process is inside from its
// first instruction; the thread then goes back.
func (ct *cgContainer) startInside(start func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := strconv.Itoa(syscall.Gettid())
	var back []string
	for _, c := range []struct{ controller, dir string }{{"cpu", ct.cpu}, {"memory", ct.mem}} {
		cur, err := currentCgroup(c.controller)
		if err != nil {
			return err
		}
		back = append(back, filepath.Join("/sys/fs/cgroup", c.controller, cur, "tasks"))
		if err := os.WriteFile(filepath.Join(c.dir, "tasks"), []byte(tid), 0o644); err != nil {
			return fmt.Errorf("cgroups: join %s: %w", c.dir, err)
		}
	}
	err := start()
	for _, tasks := range back {
		if werr := os.WriteFile(tasks, []byte(tid), 0o644); werr != nil {
			runtime.LockOSThread() // this thread stays in the container's cgroups: let Go end it
		}
	}
	return err
}

// oomKills is the number of processes the kernel killed in the container
// for memory.
func (ct *cgContainer) oomKills() int {
	b, err := os.ReadFile(filepath.Join(ct.mem, "memory.oom_control"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// remove deletes the container's cgroups; they must be empty.
func (ct *cgContainer) remove() {
	for _, dir := range []string{ct.cpu, ct.mem} {
		for range 50 { // a just-killed process may take a moment to leave
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// close removes the dev cluster's own cgroups.
func (cg *cgroupsV1) close() {
	cg.removeEmpty()
	for _, root := range []string{cg.cpuRoot, cg.memRoot} {
		_ = os.Remove(root)
	}
}

// cgroupLauncher puts each container it starts into cgroups of its own.
type cgroupLauncher struct {
	base Launcher
	cg   *cgroupsV1
}

// Launch starts spec inside fresh cgroups when it has limits.
func (l cgroupLauncher) Launch(spec ProcessSpec) (Process, error) {
	if spec.Limits == nil {
		return l.base.Launch(spec)
	}
	ct, err := l.cg.create(spec.ContainerID, *spec.Limits)
	if err != nil {
		return nil, err
	}
	var p Process
	err = ct.startInside(func() error {
		var err error
		p, err = l.base.Launch(spec)
		return err
	})
	if err != nil {
		ct.remove()
		return nil, err
	}
	cp := &cgroupProcess{Process: p, ct: ct, done: make(chan struct{})}
	go cp.watchMemory()
	return cp, nil
}

// cgroupProcess is a container's main process; it ends the container when
// the kernel killed one of its processes for memory, as Mesos' memory
// isolator does.
type cgroupProcess struct {
	Process
	ct       *cgContainer
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	oomKill  bool
	waitDone bool
}

func (p *cgroupProcess) watchMemory() {
	tick := time.NewTicker(oomPoll)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			if p.ct.oomKills() > 0 {
				p.mu.Lock()
				p.oomKill = true
				p.mu.Unlock()
				_ = p.Process.Signal(syscall.SIGKILL)
				return
			}
		}
	}
}

// Wait waits for the process, then removes the container's cgroups.
func (p *cgroupProcess) Wait() (syscall.WaitStatus, error) {
	ws, err := p.Process.Wait()
	if p.ct.oomKills() > 0 {
		p.mu.Lock()
		p.oomKill = true
		p.mu.Unlock()
	}
	p.once.Do(func() { close(p.done) })
	_ = p.Process.Signal(syscall.SIGKILL) // whatever is left of the container
	p.ct.remove()
	return ws, err
}

// Limitation reports which limit, if any, ended the container.
func (p *cgroupProcess) Limitation() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oomKill {
		return "memory"
	}
	return ""
}
