package devcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// With Config.Isolation "cgroups" the agents isolate executors as Mesos'
// agent does with --isolation=cgroups/cpu,cgroups/mem: each container (an
// executor, or a command task) gets a cgroup with CPU shares and a CFS quota
// from its cpus and a memory limit from its mem. As Mesos' agent calls
// Containerizer::update, the limits follow the executor's resources plus its
// live tasks': they grow when a task is added to a running executor, and
// shrink when a task ends (memory as Mesos' memory isolator does: the soft
// limit follows, the hard limit is only ever raised, since lowering it below
// what is in use would invoke the OOM killer). When the kernel kills a
// process of a container for memory, the whole container is destroyed and
// its tasks fail with REASON_CONTAINER_LIMITATION_MEMORY. A unified cgroup v2
// hierarchy mounted at /sys/fs/cgroup is used (with its cpu and memory
// controllers) where there is one; cgroup v1's cpu and memory controllers
// otherwise.
// Containers' cgroups go under the dev cluster's own (nested in the
// process's current cgroup, so limits around the dev cluster still hold) and
// are removed when the container ends.

// Limits are what a container's resources allow.
type Limits struct {
	CPUs     float64
	MemBytes uint64
}

// Mesos' isolators' constants (slave/containerizer/mesos/constants.hpp).
const (
	cpuSharesPerCPU = 1024
	minCPUShares    = 2
	cfsPeriodUs     = 100000
	minCFSQuotaUs   = 1000
	minMemory       = 32 << 20
)

// shares, quota and soft memory limit of lim, as Mesos computes them.
func (lim Limits) shares() int64  { return max(minCPUShares, int64(lim.CPUs*cpuSharesPerCPU)) }
func (lim Limits) quotaUs() int64 { return max(minCFSQuotaUs, int64(lim.CPUs*cfsPeriodUs)) }
func (lim Limits) memory() uint64 { return max(minMemory, lim.MemBytes) }

// cgroups is a cgroup hierarchy the isolation puts containers in: cgroup
// v1's cpu and memory controllers (cgroupsV1) or the unified v2 hierarchy
// (cgroupsV2).
type cgroups interface {
	// mode is "v1" or "v2".
	mode() string
	// roots are the dev cluster's own cgroups, the containers' parents.
	roots() []string
	// create makes a container's cgroup with the limits lim.
	create(id string, lim Limits) (cgContainer, error)
	// container is the cgroup of an existing container.
	container(id string) cgContainer
	// close removes the dev cluster's own cgroups (and empty containers').
	close()
}

// cgContainer is one container's cgroup.
type cgContainer interface {
	// launch starts spec's process with base so that it is inside the
	// container's cgroup from its first instruction.
	launch(base Launcher, spec ProcessSpec) (Process, error)
	// update sets the limits of a running container: CPU both ways, the
	// soft memory limit both ways, the hard memory limit only upwards.
	update(lim Limits) error
	// oomKills is the number of processes the kernel killed in the
	// container for memory.
	oomKills() int
	// kill kills every process in the container.
	kill()
	// remove deletes the cgroup; it must be empty.
	remove()
}

// oomPoll is how often a container's OOM counter is read.
const oomPoll = 50 * time.Millisecond

// newCgroups prepares the dev cluster's cgroups, or says why it cannot.
func newCgroups(name string, log *slog.Logger) (cgroups, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("cgroups need root")
	}
	return openCgroups("/sys/fs/cgroup", name, log, realCgroupFS{})
}

// openCgroups picks the hierarchy under mount: v2 when a unified hierarchy
// is mounted there (it has cgroup.controllers), v1 otherwise. fs makes and
// removes v2 cgroups (a fake tree's in tests).
func openCgroups(mount, name string, log *slog.Logger, fs cgroupFS) (cgroups, error) {
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		current, err := currentCgroupV2()
		if err != nil {
			return nil, err
		}
		return newCgroupsV2(mount, current, name, log, fs)
	}
	return newCgroupsV1(mount, name, log)
}

// cgWrite writes v to an existing cgroup interface file (never creating
// one: the kernel makes them).
func cgWrite(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cgWriteAll writes the files in order, stopping at the first error.
func cgWriteAll(dir string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := cgWrite(filepath.Join(dir, kv[i]), kv[i+1]); err != nil {
			return fmt.Errorf("cgroups: %s: %w", filepath.Join(dir, kv[i]), err)
		}
	}
	return nil
}

// cgReadUint reads a number from a cgroup file; "max" is the largest.
func cgReadUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return ^uint64(0), nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// cgKeyedValue reads key's value in a flat keyed file (memory.events,
// memory.oom_control).
func cgKeyedValue(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// killProcs kills the processes listed in a cgroup.procs file.
func killProcs(procs string) {
	b, _ := os.ReadFile(procs)
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeDir removes a container's cgroup, waiting a little for a just-killed
// process to leave it.
func removeDir(rmdir func(string) error, dir string) {
	for range 50 {
		if err := rmdir(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procCgroupLines are this thread's lines of /proc/self/cgroup.
func procCgroupLines() ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/cgroup", syscall.Gettid()))
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}

// ---- the launcher -------------------------------------------------------

// cgroupLauncher puts each container it starts into a cgroup of its own.
type cgroupLauncher struct {
	base Launcher
	cg   cgroups
}

// Launch starts spec inside a fresh cgroup when it has limits.
func (l cgroupLauncher) Launch(spec ProcessSpec) (Process, error) {
	if spec.Limits == nil {
		return l.base.Launch(spec)
	}
	ct, err := l.cg.create(spec.ContainerID, *spec.Limits)
	if err != nil {
		return nil, err
	}
	p, err := ct.launch(l.base, spec)
	if err != nil {
		ct.kill()
		ct.remove()
		return nil, err
	}
	cp := &cgroupProcess{Process: p, ct: ct, done: make(chan struct{})}
	go cp.watchMemory()
	return cp, nil
}

// Update sets a running container's limits to lim, as Mesos'
// Containerizer::update does when its executor's tasks change.
func (l cgroupLauncher) Update(containerID string, lim Limits) error {
	return l.cg.container(containerID).update(lim)
}

// containerUpdater is a Launcher that can change a running container's
// limits.
type containerUpdater interface {
	Update(containerID string, lim Limits) error
}

// cgroupProcess is a container's main process; it ends the container when
// the kernel killed one of its processes for memory, as Mesos' memory
// isolator does.
type cgroupProcess struct {
	Process
	ct      cgContainer
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	oomKill bool
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
				p.ct.kill()
				return
			}
		}
	}
}

// Wait waits for the process, then destroys the container: whatever is
// left in it is killed and its cgroup removed.
func (p *cgroupProcess) Wait() (syscall.WaitStatus, error) {
	ws, err := p.Process.Wait()
	if p.ct.oomKills() > 0 {
		p.mu.Lock()
		p.oomKill = true
		p.mu.Unlock()
	}
	p.once.Do(func() { close(p.done) })
	_ = p.Process.Signal(syscall.SIGKILL)
	p.ct.kill()
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
