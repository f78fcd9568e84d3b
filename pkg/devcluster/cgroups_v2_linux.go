package devcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cgroupsV2 manages containers' cgroups on the unified (v2) hierarchy with
// its cpu and memory controllers: cpu.weight, cpu.max, memory.low and
// memory.max; OOM kills are counted in memory.events.
//
// The kernel only lets a cgroup with no processes of its own enable
// controllers for its children (the root cgroup excepted): the dev cluster
// enables cpu and memory in its current cgroup's cgroup.subtree_control
// unless they are on already, and says why when the kernel refuses.
type cgroupsV2 struct {
	root string // the dev cluster's own cgroup
	fs   cgroupFS
	log  *slog.Logger
}

// cgroupFS makes and removes cgroup directories: the kernel fills a new one
// with its interface files and removes them with it. Tests put a fake tree
// in its place.
type cgroupFS interface {
	mkdir(dir string) error
	rmdir(dir string) error
}

type realCgroupFS struct{}

func (realCgroupFS) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

func (realCgroupFS) rmdir(dir string) error { return os.Remove(dir) }

// v2Controllers are the controllers the isolation needs.
var v2Controllers = []string{"cpu", "memory"}

// currentCgroupV2 is this thread's cgroup in the unified hierarchy.
func currentCgroupV2() (string, error) {
	lines, err := procCgroupLines()
	if err != nil {
		return "", err
	}
	for _, line := range lines {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("cgroups: this process is in no cgroup v2 cgroup")
}

// newCgroupsV2 makes the dev cluster's cgroup, name, under current (the
// process's cgroup) in the hierarchy mounted at mount.
func newCgroupsV2(mount, current, name string, log *slog.Logger, fs cgroupFS) (*cgroupsV2, error) {
	parent := filepath.Join(mount, current)
	b, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	available := strings.Fields(string(b))
	for _, c := range v2Controllers {
		if !slicesContains(available, c) {
			return nil, fmt.Errorf("cgroup v2 controller %s is not available in %s (it has %q)", c, parent, available)
		}
	}
	if err := enableControllers(parent); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("%w (the kernel enables controllers for the children of a cgroup with no processes of its own only: run the dev cluster in the root cgroup or one that delegates them)", err)
		}
		return nil, err
	}
	cg := &cgroupsV2{root: filepath.Join(parent, name), fs: fs, log: log}
	if err := fs.mkdir(cg.root); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := enableControllers(cg.root); err != nil {
		_ = fs.rmdir(cg.root)
		return nil, err
	}
	cg.removeEmpty() // what a dev cluster killed with -9 left on this block
	return cg, nil
}

// enableControllers enables cpu and memory for dir's children.
func enableControllers(dir string) error {
	path := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	var on []string
	for _, f := range strings.Fields(string(b)) {
		on = append(on, strings.TrimPrefix(f, "+"))
	}
	var add []string
	for _, c := range v2Controllers {
		if !slicesContains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := cgWrite(path, strings.Join(add, " ")); err != nil {
		return fmt.Errorf("cgroups: enable %s in %s: %w", strings.Join(add, " "), path, err)
	}
	return nil
}

func (cg *cgroupsV2) mode() string    { return "v2" }
func (cg *cgroupsV2) roots() []string { return []string{cg.root} }

// removeEmpty removes the containers' cgroups no process is in any more.
func (cg *cgroupsV2) removeEmpty() {
	entries, _ := os.ReadDir(cg.root)
	for _, e := range entries {
		if e.IsDir() {
			_ = cg.fs.rmdir(filepath.Join(cg.root, e.Name())) // fails while in use
		}
	}
}

func (cg *cgroupsV2) close() {
	cg.removeEmpty()
	_ = cg.fs.rmdir(cg.root)
}

// cgContainerV2 is one container's cgroup.
type cgContainerV2 struct {
	dir string
	fs  cgroupFS
}

func (cg *cgroupsV2) container(id string) cgContainer {
	return &cgContainerV2{dir: filepath.Join(cg.root, id), fs: cg.fs}
}

func (cg *cgroupsV2) create(id string, lim Limits) (cgContainer, error) {
	ct := cg.container(id).(*cgContainerV2)
	if err := cg.fs.mkdir(ct.dir); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := ct.set(lim, true); err != nil {
		ct.remove()
		return nil, err
	}
	return ct, nil
}

func (ct *cgContainerV2) update(lim Limits) error { return ct.set(lim, false) }

// cpuWeight converts cgroup v1 CPU shares [2, 262144] to a cgroup v2 weight
// [1, 10000] as runc does.
func cpuWeight(shares int64) int64 {
	if shares <= 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// set writes the limits: cpu.weight and cpu.max always; memory.low (the
// soft limit) always; memory.max the first time or when it grows, never
// lower — as Mesos' cgroups2 memory controller does.
func (ct *cgContainerV2) set(lim Limits, first bool) error {
	if err := cgWriteAll(ct.dir,
		"cpu.weight", strconv.FormatInt(cpuWeight(lim.shares()), 10),
		"cpu.max", fmt.Sprintf("%d %d", lim.quotaUs(), cfsPeriodUs)); err != nil {
		return err
	}
	if lim.MemBytes == 0 {
		return nil
	}
	mem := lim.memory()
	if err := cgWriteAll(ct.dir, "memory.low", strconv.FormatUint(mem, 10)); err != nil {
		return err
	}
	if !first {
		cur, err := cgReadUint(filepath.Join(ct.dir, "memory.max"))
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if mem <= cur {
			return nil
		}
	}
	return cgWriteAll(ct.dir, "memory.max", strconv.FormatUint(mem, 10))
}

// launch clones the process straight into the cgroup (clone3 with
// CLONE_INTO_CGROUP, through ProcessSpec.CgroupDir), then writes its pid to
// cgroup.procs — a no-op when it is there already, and what puts it in when
// the base launcher does not honour CgroupDir.
func (ct *cgContainerV2) launch(base Launcher, spec ProcessSpec) (Process, error) {
	dir, err := os.Open(ct.dir)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer dir.Close()
	spec.CgroupDir = dir
	p, err := base.Launch(spec)
	if err != nil {
		return nil, err
	}
	if err := cgWrite(filepath.Join(ct.dir, "cgroup.procs"), strconv.Itoa(p.Pid())); err != nil {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait()
		return nil, fmt.Errorf("cgroups: join %s: %w", ct.dir, err)
	}
	return p, nil
}

func (ct *cgContainerV2) oomKills() int {
	return cgKeyedValue(filepath.Join(ct.dir, "memory.events"), "oom_kill")
}

// kill kills the container's processes: all at once with cgroup.kill
// (Linux 5.14), one by one from cgroup.procs before.
func (ct *cgContainerV2) kill() {
	if cgWrite(filepath.Join(ct.dir, "cgroup.kill"), "1") == nil {
		return
	}
	killProcs(filepath.Join(ct.dir, "cgroup.procs"))
}

func (ct *cgContainerV2) remove() { removeDir(ct.fs.rmdir, ct.dir) }
