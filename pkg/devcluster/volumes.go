package devcluster

import (
	"os"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Persistent volumes, agent side (§4). The master sends the agent's whole
// set of checkpointed resources (dynamic reservations and volumes) after
// every operation that changes it; the agent persists it and keeps one
// directory per volume, <work>/volumes/roles/<role>/<persistence id> ('/'
// in hierarchical roles becomes ' ', as in Mesos). A volume that leaves the
// set was destroyed: its directory is deleted. A task or executor that uses
// a volume gets <sandbox>/<container_path> as a symlink to the volume's
// directory, like Mesos' posix filesystem isolator; the link goes away when
// the executor ends, the data stays.

// volumeRole is the role a volume's disk is reserved for.
func volumeRole(r mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetRole()
	}
	if r.Role != nil && *r.Role != "" {
		return *r.Role
	}
	if r.Reservation != nil && r.Reservation.Role != nil {
		return *r.Reservation.Role
	}
	return "*"
}

func isVolume(r mesos.Resource) bool {
	return r.Disk != nil && r.Disk.Persistence != nil && r.Disk.Persistence.ID != ""
}

func (a *Agent) volumeDir(r mesos.Resource) string {
	role := strings.ReplaceAll(volumeRole(r), "/", " ")
	return filepath.Join(a.cfg.WorkDir, "volumes", "roles", role, r.Disk.Persistence.ID)
}

// checkpointResourcesLocked applies msgCheckpointResources.
func (a *Agent) checkpointResourcesLocked(rs []mesos.Resource) {
	keep, had := map[string]bool{}, map[string]bool{}
	for _, r := range a.checkpointed {
		if isVolume(r) {
			had[a.volumeDir(r)] = true
		}
	}
	for _, r := range rs {
		if isVolume(r) {
			dir := a.volumeDir(r)
			keep[dir] = true
			if had[dir] {
				continue // made when it was checkpointed, or at recovery
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				a.log.Error("cannot create volume", "dir", dir, "err", err)
			}
		}
	}
	for _, r := range a.checkpointed {
		if isVolume(r) {
			if dir := a.volumeDir(r); !keep[dir] {
				a.log.Info("destroying volume", "dir", dir)
				if err := os.RemoveAll(dir); err != nil {
					a.log.Error("cannot delete volume", "dir", dir, "err", err)
				}
			}
		}
	}
	a.checkpointed = append([]mesos.Resource(nil), rs...)
	a.saveCheckpointLocked()
}

// linkVolumes makes <sandbox>/<container_path> a symlink to each volume
// among rs and returns the links made.
func (a *Agent) linkVolumes(sandbox string, rs []mesos.Resource) []string {
	var links []string
	for _, r := range rs {
		if !isVolume(r) || r.Disk.Volume == nil || r.Disk.Volume.ContainerPath == "" {
			continue
		}
		dir := a.volumeDir(r)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			a.log.Error("cannot create volume", "dir", dir, "err", err)
			continue
		}
		cp := r.Disk.Volume.ContainerPath
		if filepath.IsAbs(cp) {
			cp = strings.TrimLeft(cp, "/")
		}
		link := filepath.Join(sandbox, filepath.Clean("/"+cp))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			continue
		}
		if fi, err := os.Lstat(link); err == nil {
			if fi.Mode()&os.ModeSymlink == 0 {
				a.log.Error("volume container path exists in the sandbox", "path", link)
				continue
			}
			_ = os.Remove(link)
		}
		if err := os.Symlink(dir, link); err != nil {
			a.log.Error("cannot link volume", "link", link, "err", err)
			continue
		}
		links = append(links, link)
	}
	return links
}

func (a *Agent) unlinkVolumes(ex *agentExecutor) {
	for _, l := range ex.links {
		if fi, err := os.Lstat(l); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			_ = os.Remove(l)
		}
	}
	ex.links = nil
}
