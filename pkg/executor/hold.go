package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// HoldFile is the file the hold workload keeps in each persistent volume
// of its task.
const HoldFile = "mysos-hold.txt"

// HoldRecord is the content of a HoldFile: the task that last started on
// the volume and how many times a hold workload started on it.
type HoldRecord struct {
	TaskID string
	Starts int
}

// ReadHoldFile reads a HoldFile ("task_id=<id>" and "starts=<n>" lines).
func ReadHoldFile(path string) (HoldRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return HoldRecord{}, err
	}
	var r HoldRecord
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "task_id":
			r.TaskID = v
		case "starts":
			if r.Starts, err = strconv.Atoi(v); err != nil {
				return HoldRecord{}, fmt.Errorf("%s: bad starts %q", path, v)
			}
		}
	}
	return r, nil
}

func writeHoldFile(path string, r HoldRecord) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "task_id=%s\nstarts=%d\n", r.TaskID, r.Starts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// hold runs until stopped. Before it reports itself up it counts its start
// in the HoldFile of every persistent volume of its task, which shows that
// a volume survived a relaunch.
type hold struct {
	taskID string
	dirs   []string
	done   chan struct{}
	once   sync.Once
}

// NewHold is the Factory of the "hold" workload.
func NewHold(task mesos.TaskInfo, sandbox string) (Workload, error) {
	h := &hold{taskID: task.TaskID.Value, done: make(chan struct{})}
	for _, r := range task.Resources {
		if r.GetDisk().GetPersistence() == nil {
			continue
		}
		p := r.GetDisk().GetVolume().GetContainerPath()
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(sandbox, p)
		}
		h.dirs = append(h.dirs, p)
	}
	return h, nil
}

func (h *hold) Start(ctx context.Context) error {
	for _, dir := range h.dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, HoldFile)
		rec, err := ReadHoldFile(path)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("hold: %w", err)
		}
		rec.TaskID = h.taskID
		rec.Starts++
		if err := writeHoldFile(path, rec); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
	}
	return nil
}

func (h *hold) Done() <-chan struct{} { return h.done }
func (h *hold) Err() error            { return nil }

func (h *hold) Stop(time.Duration) error {
	h.once.Do(func() { close(h.done) })
	return nil
}
