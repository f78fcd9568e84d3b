package devcluster

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mysos-project/mysos/internal/testutil"
)

// The cgroup v2 code is tested against a fake tree in a temp dir: fakeCgroupFS
// plays the kernel, filling each new cgroup with the interface files the
// code writes and the test reads back, and refusing to remove one that
// still has processes or children.

type fakeCgroupFS struct {
	mu     sync.Mutex
	killed map[string]bool // cgroups removed after "1" was written to their cgroup.kill
}

func newFakeCgroupFS() *fakeCgroupFS { return &fakeCgroupFS{killed: map[string]bool{}} }

func (fs *fakeCgroupFS) wasKilled(dir string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.killed[dir]
}

var fakeCgroupFiles = map[string]string{
	"cgroup.controllers":     "cpu memory pids",
	"cgroup.subtree_control": "",
	"cgroup.procs":           "",
	"cgroup.kill":            "",
	"cpu.weight":             "100",
	"cpu.max":                "max 100000",
	"memory.low":             "0",
	"memory.max":             "max",
	"memory.events":          "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
}

func (*fakeCgroupFS) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); os.IsExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	for name, v := range fakeCgroupFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// rmdir removes a cgroup without children whose processes are gone, or
// were all killed through cgroup.kill.
func (fs *fakeCgroupFS) rmdir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			return syscall.EBUSY
		}
	}
	kill, _ := os.ReadFile(filepath.Join(dir, "cgroup.kill"))
	killed := string(kill) == "1"
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); strings.TrimSpace(string(b)) != "" && !killed {
		return syscall.EBUSY
	}
	fs.mu.Lock()
	fs.killed[dir] = killed
	fs.mu.Unlock()
	return os.RemoveAll(dir)
}

func readCg(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeCg(t *testing.T, dir, file, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeV2Mount is a fake unified hierarchy with the process's cgroup current
// in it, as a kernel shows it: its controllers available, none enabled.
func fakeV2Mount(t *testing.T, current string) string {
	t.Helper()
	mount := t.TempDir()
	writeCg(t, mount, "cgroup.controllers", "cpuset cpu io memory pids")
	parent := filepath.Join(mount, current)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCg(t, parent, "cgroup.controllers", "cpuset cpu io memory pids")
	writeCg(t, parent, "cgroup.subtree_control", "")
	return mount
}

// fakeLauncher records the specs it is given and starts nothing.
type fakeLauncher struct {
	mu    sync.Mutex
	specs []ProcessSpec
	dirs  []string // the CgroupDir each spec had, by name
	next  *fakeProcess
}

func (l *fakeLauncher) Launch(spec ProcessSpec) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.specs = append(l.specs, spec)
	if spec.CgroupDir != nil {
		l.dirs = append(l.dirs, spec.CgroupDir.Name())
	} else {
		l.dirs = append(l.dirs, "")
	}
	return l.next, nil
}

// fakeProcess is a process of a fake container: SIGKILL ends it and (as the
// kernel would) takes it out of the container's cgroup.procs.
type fakeProcess struct {
	pid    int
	procs  string // its container's cgroup.procs
	exited chan struct{}
	once   sync.Once
}

func (p *fakeProcess) Pid() int { return p.pid }

func (p *fakeProcess) Wait() (syscall.WaitStatus, error) {
	<-p.exited
	return syscall.WaitStatus(int(syscall.SIGKILL)), nil
}

func (p *fakeProcess) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		p.once.Do(func() {
			_ = os.WriteFile(p.procs, nil, 0o644)
			close(p.exited)
		})
	}
	return nil
}

func (p *fakeProcess) killed() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func TestCgroupsV2CPUWeight(t *testing.T) {
	for shares, want := range map[int64]int64{2: 1, 102: 4, 1024: 39, 2048: 79, 262144: 10000} {
		if got := cpuWeight(shares); got != want {
			t.Errorf("cpuWeight(%d) = %d; want %d", shares, got, want)
		}
	}
}

// TestCgroupsV2FakeTree: on a fake unified hierarchy the dev cluster
// enables cpu and memory for its cgroup and for the containers', removes
// empty leftovers, writes a container's limits (cpu.weight, cpu.max,
// memory.low, memory.max), puts its process in through CLONE_INTO_CGROUP
// and cgroup.procs, resizes it as Mesos does, notices an OOM kill in
// memory.events, destroys it with cgroup.kill and removes its cgroup.
func TestCgroupsV2FakeTree(t *testing.T) {
	const current = "/user.slice/test.scope"
	mount := fakeV2Mount(t, current)
	parent := filepath.Join(mount, current)
	root := filepath.Join(parent, "mysos-devcluster-b7")
	fs := newFakeCgroupFS()
	// What a dev cluster killed with -9 left: an empty container and a
	// busy one.
	for _, dir := range []string{root, filepath.Join(root, "stale"), filepath.Join(root, "busy")} {
		if err := fs.mkdir(dir); err != nil {
			t.Fatal(err)
		}
	}
	writeCg(t, filepath.Join(root, "busy"), "cgroup.procs", "4000\n")

	cg, err := newCgroupsV2(mount, current, "mysos-devcluster-b7", testLogger(t), fs)
	if err != nil {
		t.Fatal(err)
	}
	if cg.mode() != "v2" || len(cg.roots()) != 1 || cg.roots()[0] != root {
		t.Fatalf("mode %s, roots %v; want v2, [%s]", cg.mode(), cg.roots(), root)
	}
	for _, dir := range []string{parent, root} {
		if got := readCg(t, dir, "cgroup.subtree_control"); got != "+cpu +memory" {
			t.Fatalf("%s/cgroup.subtree_control = %q; want +cpu +memory", dir, got)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "stale")); !os.IsNotExist(err) {
		t.Fatal("the empty leftover container cgroup was not removed")
	}
	if _, err := os.Stat(filepath.Join(root, "busy")); err != nil {
		t.Fatal("the leftover container cgroup with a process was removed")
	}

	const mib = 1 << 20
	base := &fakeLauncher{}
	l := cgroupLauncher{base: base, cg: cg}
	ctDir := filepath.Join(root, "c1")
	base.next = &fakeProcess{pid: 4242, procs: filepath.Join(ctDir, "cgroup.procs"), exited: make(chan struct{})}
	proc, err := l.Launch(ProcessSpec{Argv: []string{"executor"}, ContainerID: "c1", Limits: &Limits{CPUs: 0.5, MemBytes: 64 * mib}})
	if err != nil {
		t.Fatal(err)
	}
	if base.dirs[0] != ctDir {
		t.Fatalf("the process was cloned into %q; want CgroupDir %s", base.dirs[0], ctDir)
	}
	if got := readCg(t, ctDir, "cgroup.procs"); got != "4242" {
		t.Fatalf("cgroup.procs = %q; want the process's pid 4242", got)
	}
	want := func(when, weight, cpuMax string, low, max int) {
		t.Helper()
		got := [4]string{readCg(t, ctDir, "cpu.weight"), readCg(t, ctDir, "cpu.max"), readCg(t, ctDir, "memory.low"), readCg(t, ctDir, "memory.max")}
		exp := [4]string{weight, cpuMax, strconv.Itoa(low), strconv.Itoa(max)}
		if got != exp {
			t.Fatalf("%s: cpu.weight, cpu.max, memory.low, memory.max = %q; want %q", when, got, exp)
		}
	}
	want("launched", "20", "50000 100000", 64*mib, 64*mib)
	if err := l.Update("c1", Limits{CPUs: 1.5, MemBytes: 256 * mib}); err != nil {
		t.Fatal(err)
	}
	want("grown", "59", "150000 100000", 256*mib, 256*mib)
	if err := l.Update("c1", Limits{CPUs: 0.25, MemBytes: 16 * mib}); err != nil {
		t.Fatal(err)
	}
	want("shrunk (the hard limit stays; the soft one is at least 32 MiB)", "10", "25000 100000", 32*mib, 256*mib)

	// The kernel killed a process for memory: the container is destroyed
	// and says why.
	fp := base.next
	writeCg(t, ctDir, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
	testutil.WaitFor(t, 5*time.Second, "the OOM kill to be noticed", fp.killed)
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := proc.(limited).Limitation(); got != "memory" {
		t.Fatalf("Limitation() = %q; want memory", got)
	}
	if got := readCg(t, filepath.Dir(ctDir), "busy/cgroup.procs"); got != "4000" {
		t.Fatalf("another container's processes were touched: %q", got)
	}
	if _, err := os.Stat(ctDir); !os.IsNotExist(err) {
		t.Fatalf("the container's cgroup %s is left after it ended", ctDir)
	}

	// A container whose process ends by itself: the rest of it is killed
	// through cgroup.kill, then its cgroup goes.
	ct2 := filepath.Join(root, "c2")
	base.next = &fakeProcess{pid: 4343, procs: filepath.Join(ct2, "cgroup.procs"), exited: make(chan struct{})}
	proc, err = l.Launch(ProcessSpec{Argv: []string{"executor"}, ContainerID: "c2", Limits: &Limits{CPUs: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readCg(t, ct2, "memory.max"); got != "max" {
		t.Fatalf("memory.max = %q for a container without mem; want it untouched", got)
	}
	// The process ends; another one of the container (4344) is still in.
	writeCg(t, ct2, "cgroup.procs", "4343\n4344\n")
	base.next.once.Do(func() { close(base.next.exited) })
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	if !fs.wasKilled(ct2) {
		t.Fatal("the container's cgroup was not killed through cgroup.kill when its process ended")
	}
	if _, err := os.Stat(ct2); !os.IsNotExist(err) {
		t.Fatalf("the container's cgroup %s is left after it ended", ct2)
	}

	writeCg(t, filepath.Join(root, "busy"), "cgroup.procs", "")
	cg.close()
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("the dev cluster's cgroup %s is left after it closed", root)
	}
}

// TestCgroupsSelection: v2 is chosen where a unified hierarchy is mounted
// (cgroup.controllers at the mount), v1 otherwise; v2 without the cpu or
// memory controller is refused with the reason.
func TestCgroupsSelection(t *testing.T) {
	current, err := currentCgroupV2()
	if err != nil {
		t.Fatal(err)
	}
	mount := fakeV2Mount(t, current)
	cg, err := openCgroups(mount, "mysos-devcluster-b9", testLogger(t), newFakeCgroupFS())
	if err != nil {
		t.Fatal(err)
	}
	if cg.mode() != "v2" {
		t.Fatalf("mode %s with cgroup.controllers at the mount; want v2", cg.mode())
	}
	cg.close()

	writeCg(t, filepath.Join(mount, current), "cgroup.controllers", "cpuset io pids")
	if _, err := openCgroups(mount, "mysos-devcluster-b9", testLogger(t), newFakeCgroupFS()); err == nil ||
		!strings.Contains(err.Error(), "controller cpu is not available") {
		t.Fatalf("v2 without cpu and memory: err %v; want the controller named", err)
	}

	_, err = openCgroups(t.TempDir(), "mysos-devcluster-b9", testLogger(t), newFakeCgroupFS())
	if err == nil || !strings.Contains(err.Error(), "cgroup v1 controller cpu is not mounted") {
		t.Fatalf("no cgroup.controllers at the mount: err %v; want v1 tried", err)
	}
}

// TestCgroupsV2RealProcess puts a real process into a cgroup of the real
// unified hierarchy with CLONE_INTO_CGROUP, then kills it with cgroup.kill
// and removes the cgroup. It needs no controller, so it runs on a hybrid
// (v1 controllers) machine too: the hierarchy is mounted for the test when
// it is not already.
func TestCgroupsV2RealProcess(t *testing.T) {
	testutil.RequireRoot(t, "cgroup v2")
	mount := cgroup2Mount(t)
	current, err := currentCgroupV2()
	if err != nil {
		t.Fatal(err)
	}
	ct := &cgContainerV2{dir: filepath.Join(mount, current, "mysos-devcluster-test-"+strconv.Itoa(os.Getpid())), fs: realCgroupFS{}}
	if err := ct.fs.mkdir(ct.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.kill(); ct.remove() })
	sandbox := t.TempDir()
	p, err := ct.launch(LocalLauncher{}, ProcessSpec{
		Argv: []string{"/bin/sh", "-c", "sleep 60 & sleep 60 & wait"}, Dir: sandbox,
		Stdout: filepath.Join(sandbox, "stdout"), Stderr: filepath.Join(sandbox, "stderr"),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	wantCg := "0::" + filepath.Join(current, filepath.Base(ct.dir))
	if !strings.Contains(string(b), wantCg+"\n") {
		t.Fatalf("the process is in\n%s\nwant %s", b, wantCg)
	}
	if !testutil.Eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(ct.dir, "cgroup.procs"))
		return len(strings.Fields(string(b))) == 3
	}) {
		b, _ := os.ReadFile(filepath.Join(ct.dir, "cgroup.procs"))
		t.Fatalf("cgroup.procs = %q; want the shell and its two sleeps", b)
	}
	ct.kill()
	if ws, _ := p.Wait(); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the container's process ended with %v; want SIGKILL", ws)
	}
	testutil.WaitFor(t, 5*time.Second, "the container to be empty", func() bool {
		b, _ := os.ReadFile(filepath.Join(ct.dir, "cgroup.events"))
		return strings.Contains(string(b), "populated 0")
	})
	ct.remove()
	if _, err := os.Stat(ct.dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s is left", ct.dir)
	}
}

// cgroup2Mount is where the unified hierarchy is mounted, mounting it in a
// temp dir (for the test) when it is nowhere.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		t.Fatalf("mount cgroup2: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
