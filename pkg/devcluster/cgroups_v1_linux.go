package devcluster

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// cgroupsV1 manages containers' cgroups on cgroup v1's cpu and memory
// controllers.
type cgroupsV1 struct {
	mount            string // where the controllers are mounted, /sys/fs/cgroup
	cpuRoot, memRoot string // the dev cluster's own cgroups
	log              *slog.Logger
}

func newCgroupsV1(mount, name string, log *slog.Logger) (*cgroupsV1, error) {
	cg := &cgroupsV1{mount: mount, log: log}
	for _, c := range []struct {
		controller string
		root       *string
	}{{"cpu", &cg.cpuRoot}, {"memory", &cg.memRoot}} {
		dir := filepath.Join(mount, c.controller)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			return nil, fmt.Errorf("cgroup v1 controller %s is not mounted at %s", c.controller, dir)
		}
		current, err := currentCgroupV1(c.controller)
		if err != nil {
			return nil, err
		}
		*c.root = filepath.Join(dir, current, name)
		if err := os.MkdirAll(*c.root, 0o755); err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	cg.removeEmpty() // what a dev cluster killed with -9 left on this block
	return cg, nil
}

func (cg *cgroupsV1) mode() string    { return "v1" }
func (cg *cgroupsV1) roots() []string { return []string{cg.cpuRoot, cg.memRoot} }

// removeEmpty removes the containers' cgroups no process is in any more.
func (cg *cgroupsV1) removeEmpty() {
	for _, root := range cg.roots() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(root, e.Name())) // fails while in use
			}
		}
	}
}

// close removes the dev cluster's own cgroups.
func (cg *cgroupsV1) close() {
	cg.removeEmpty()
	for _, root := range cg.roots() {
		_ = os.Remove(root)
	}
}

// currentCgroupV1 is this thread's cgroup path in a v1 controller.
func currentCgroupV1(controller string) (string, error) {
	lines, err := procCgroupLines()
	if err != nil {
		return "", err
	}
	for _, line := range lines {
		parts := strings.SplitN(line, ":", 3)
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

// cgContainerV1 is one container's cgroups, one per controller.
type cgContainerV1 struct {
	mount    string
	cpu, mem string
}

func (cg *cgroupsV1) container(id string) cgContainer {
	return &cgContainerV1{mount: cg.mount, cpu: filepath.Join(cg.cpuRoot, id), mem: filepath.Join(cg.memRoot, id)}
}

func (cg *cgroupsV1) create(id string, lim Limits) (cgContainer, error) {
	ct := cg.container(id).(*cgContainerV1)
	for _, dir := range []string{ct.cpu, ct.mem} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			ct.remove()
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	if err := ct.set(lim, true); err != nil {
		ct.remove()
		return nil, err
	}
	return ct, nil
}

func (ct *cgContainerV1) update(lim Limits) error { return ct.set(lim, false) }

// set writes the limits as Mesos' cgroups cpu and mem isolators do: shares
// and quota always; memory.soft_limit_in_bytes always; memory.limit_in_bytes
// the first time or when it grows, never lower (that could OOM-kill).
func (ct *cgContainerV1) set(lim Limits, first bool) error {
	if err := cgWriteAll(ct.cpu,
		"cpu.shares", strconv.FormatInt(lim.shares(), 10),
		"cpu.cfs_period_us", strconv.Itoa(cfsPeriodUs),
		"cpu.cfs_quota_us", strconv.FormatInt(lim.quotaUs(), 10)); err != nil {
		return err
	}
	if lim.MemBytes == 0 {
		return nil
	}
	mem := lim.memory()
	if err := cgWriteAll(ct.mem, "memory.soft_limit_in_bytes", strconv.FormatUint(mem, 10)); err != nil {
		return err
	}
	hard := filepath.Join(ct.mem, "memory.limit_in_bytes")
	if !first {
		cur, err := cgReadUint(hard)
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if mem <= cur {
			return nil
		}
	}
	return cgWriteAll(ct.mem, "memory.limit_in_bytes", strconv.FormatUint(mem, 10))
}

// launch runs base.Launch (which forks the container's process) on a thread
// that joined the container's cgroups, so the process is inside from its
// first instruction; the thread then goes back.
func (ct *cgContainerV1) launch(base Launcher, spec ProcessSpec) (Process, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := strconv.Itoa(syscall.Gettid())
	var back []string
	for _, c := range []struct{ controller, dir string }{{"cpu", ct.cpu}, {"memory", ct.mem}} {
		cur, err := currentCgroupV1(c.controller)
		if err != nil {
			return nil, err
		}
		back = append(back, filepath.Join(ct.mount, c.controller, cur, "tasks"))
		if err := cgWrite(filepath.Join(c.dir, "tasks"), tid); err != nil {
			return nil, fmt.Errorf("cgroups: join %s: %w", c.dir, err)
		}
	}
	p, err := base.Launch(spec)
	for _, tasks := range back {
		if werr := cgWrite(tasks, tid); werr != nil {
			runtime.LockOSThread() // this thread stays in the container's cgroups: let Go end it
		}
	}
	return p, err
}

func (ct *cgContainerV1) oomKills() int {
	return cgKeyedValue(filepath.Join(ct.mem, "memory.oom_control"), "oom_kill")
}

func (ct *cgContainerV1) kill() {
	killProcs(filepath.Join(ct.mem, "cgroup.procs"))
	killProcs(filepath.Join(ct.cpu, "cgroup.procs"))
}

func (ct *cgContainerV1) remove() {
	for _, dir := range []string{ct.cpu, ct.mem} {
		removeDir(os.Remove, dir)
	}
}
