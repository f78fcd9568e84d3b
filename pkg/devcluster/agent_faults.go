package devcluster

import (
	"fmt"
	"syscall"
)

// KillExecutor kills an executor's process group with SIGKILL, as a crash or
// the kernel's OOM killer would; the agent then reports its tasks failed.
func (a *Agent) KillExecutor(frameworkID, executorID string) error {
	a.mu.Lock()
	var pid int
	if fw := a.frameworks[frameworkID]; fw != nil {
		if ex := fw.executors[executorID]; ex != nil && ex.proc != nil {
			pid = ex.proc.pid
		}
	}
	a.mu.Unlock()
	if pid <= 0 {
		return fmt.Errorf("no running executor %s of framework %s on this agent", executorID, frameworkID)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill executor %s (pid %d): %w", executorID, pid, err)
	}
	return nil
}
