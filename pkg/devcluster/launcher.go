package devcluster

import (
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"os"
	"os/exec"
	"syscall"
)

// Launcher is the one seam through which an agent starts executor
// processes: how a process is started, where it binds and what limits it
// gets. The default starts plain local processes; a later launcher puts each
// agent in a network namespace and cgroups of its own.
type Launcher interface {
	Launch(spec ProcessSpec) (Process, error)
}

// ProcessSpec describes one executor process.
type ProcessSpec struct {
	// Argv is the program and its arguments; a shell command is
	// {"/bin/sh", "-c", command}.
	Argv []string
	// Path is the program to execute when it differs from Argv[0] (a
	// CommandInfo with shell=false runs value with arguments as argv, whose
	// first element is only the name the process sees); empty means Argv[0].
	Path string
	Env  []string
	// Dir is the working directory: the executor's sandbox.
	Dir string
	// Stdout and Stderr are files in the sandbox the output goes to.
	Stdout, Stderr string
	// ContainerID names the container; Limits, when set, are what its
	// resources allow (enforced by the cgroups isolation only).
	ContainerID string
	Limits      *Limits
	// CgroupDir, when set, is the container's open cgroup v2 directory: the
	// process is cloned straight into it (clone3 with CLONE_INTO_CGROUP).
	CgroupDir *os.File
}

// limitsOf are the limits resources give a container.
func limitsOf(rs ...[]mesos.Resource) *Limits {
	l := &Limits{}
	for _, list := range rs {
		for _, r := range list {
			switch r.Name {
			case "cpus":
				l.CPUs += r.GetScalar().GetValue()
			case "mem":
				l.MemBytes += uint64(r.GetScalar().GetValue() * 1024 * 1024)
			}
		}
	}
	return l
}

// limited is a Process that can say which limit ended it ("memory"), as
// the cgroups isolation does.
type limited interface{ Limitation() string }

// Process is a started executor process, leader of its own process group.
type Process interface {
	Pid() int
	// Wait blocks until the process exits and returns its wait status.
	Wait() (syscall.WaitStatus, error)
	// Signal signals the whole process group.
	Signal(sig syscall.Signal) error
}

// LocalLauncher starts executors as plain processes of this host.
type LocalLauncher struct{}

// Launch starts spec in its own process group, so that killing the group
// leaves no orphans behind.
func (LocalLauncher) Launch(spec ProcessSpec) (Process, error) {
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	stdout, err := os.OpenFile(spec.Stdout, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	stderr, err := os.OpenFile(spec.Stderr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		stdout.Close()
		return nil, err
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	if spec.Path != "" {
		cmd = exec.Command(spec.Path)
		cmd.Args = spec.Argv
	}
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.CgroupDir != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(spec.CgroupDir.Fd())
	}
	err = cmd.Start()
	stdout.Close()
	stderr.Close()
	if err != nil {
		return nil, err
	}
	return &localProcess{cmd: cmd}, nil
}

type localProcess struct{ cmd *exec.Cmd }

func (p *localProcess) Pid() int { return p.cmd.Process.Pid }

func (p *localProcess) Wait() (syscall.WaitStatus, error) {
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		if _, exited := err.(*exec.ExitError); exited {
			err = nil
		}
		return ws, err
	}
	return 0, err
}

func (p *localProcess) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}
