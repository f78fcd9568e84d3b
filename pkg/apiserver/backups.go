package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// BackupService is what the API needs for backups: the jobs in the store,
// and the targets backups live in (the catalog is the target itself, so
// backups outlive the cluster they were taken of).
type BackupService interface {
	ListBackupJobs(ctx context.Context, ns, name string) ([]*store.BackupJob, error)
	PutBackupJob(ctx context.Context, j *store.BackupJob) error
	DeleteBackupJob(ctx context.Context, j *store.BackupJob) error
	Destination(c *spec.MySQLCluster) string
	RestoreDestination(c *spec.MySQLCluster) string
	Open(url string) (backup.Target, error)
}

func (s *Server) backupRoutes() []Route {
	base := "/api/v1/namespaces/{namespace}/clusters/{name}/backups"
	return []Route{
		{Pattern: "POST " + base, Access: AccessWrite, handler: s.createBackup},
		{Pattern: "GET " + base, Access: AccessRead, handler: s.listBackups},
		{Pattern: "GET " + base + "/{id}", Access: AccessRead, handler: s.getBackup},
		{Pattern: "DELETE " + base + "/{id}", Access: AccessWrite, handler: s.deleteBackup},
	}
}

// createBackup requests an on-demand backup: 202 with it, Pending.
func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) || !readNoBody(w, r) {
		return
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	jobs, err := s.cfg.Backups.ListBackupJobs(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	if ref := checkBackupRequest(c, jobs, s.cfg.Backups.Destination(c)); ref != nil {
		writeRefusal(w, ns, name, ref)
		return
	}
	j, err := s.newBackupJob(r.Context(), c)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("backup requested", "cluster", c.Key(), "backup", j.ID, "destination", j.Destination)
	writeJSON(w, http.StatusAccepted, backupOfJob(j))
}

// newBackupJob stores a job for an on-demand backup. Ids are times to the
// second: one taken already (a backup that finished within the second) moves
// the new one to the next free second.
func (s *Server) newBackupJob(ctx context.Context, c *spec.MySQLCluster) (*store.BackupJob, error) {
	now := time.Now().UTC()
	var err error
	for i := range 5 {
		j := store.NewBackupJob(c, spec.BackupOnDemand, now.Add(time.Duration(i)*time.Second), s.cfg.Backups.Destination(c))
		if err = s.cfg.Backups.PutBackupJob(ctx, j); !errors.Is(err, store.ErrConflict) {
			return j, err
		}
	}
	return nil, err
}

func checkBackupRequest(c *spec.MySQLCluster, jobs []*store.BackupJob, destination string) *refusal {
	for _, j := range jobs {
		if !j.Finished() {
			return conflict("backup %s of %s is still being taken; wait for it (mysosctl backup describe %s %s)", j.ID, c.Key(), c.Metadata.Name, j.ID)
		}
	}
	switch {
	case c.Metadata.DeletionTimestamp != nil:
		return conflict("cluster %s is being deleted", c.Key())
	case destination == "":
		return conflict("cluster %s has nowhere to put backups: set spec.backup.destination, or start the scheduler with --backup-destination", c.Key())
	}
	return nil
}

// listBackups lists a cluster's backups: the complete ones in its target,
// and those being taken or failed. A deleted cluster's backups are listed
// from ?destination=URL, or the scheduler's default destination.
func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) {
	items, ok := s.backups(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, spec.BackupList{APIVersion: "v1", Kind: "BackupList", Items: items})
}

// getBackup answers one backup: from its job while it is being taken or
// failed (so a destination that is down does not hide a failure), else
// from its manifest.
func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) {
	ns, name, id := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("id")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return
	}
	if err := backup.ValidRef(ns, name, id); err != nil {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, err.Error(), nil)
		return
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeStoreError(w, err)
		return
	}
	dest, ok := destinationParam(w, r)
	if !ok {
		return
	}
	if c != nil {
		jobs, err := s.cfg.Backups.ListBackupJobs(r.Context(), ns, name)
		if err != nil {
			s.writeStoreError(w, err)
			return
		}
		for _, j := range jobs {
			if j.ID == id && j.Phase != store.BackupSucceeded {
				writeJSON(w, http.StatusOK, backupOfJob(j))
				return
			}
		}
	}
	if dest == "" {
		dest = s.cfg.Backups.Destination(orEmpty(c))
	}
	t, err := s.openToRead(dest)
	var m backup.Manifest
	if err == nil {
		m, err = backup.ReadManifest(r.Context(), t, ns, name, id)
		t.Close()
	}
	if errors.Is(err, backup.ErrNotFound) {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound,
			fmt.Sprintf("cluster %s/%s has no backup %s in %s; mysosctl backup list %s shows them", ns, name, id, dest, name), nil)
		return
	}
	if err != nil {
		s.writeTargetError(w, dest, err)
		return
	}
	writeJSON(w, http.StatusOK, backupOfManifest(m, dest))
}

// openToRead opens a destination to read backups from it. Opening a file
// destination creates its directory, which a read must not do (a GET naming
// ?destination=file:///anywhere would create that directory on the
// scheduler's host): one that does not exist holds no backups, and the
// answer is backup.ErrNotFound.
func (s *Server) openToRead(dest string) (backup.Target, error) {
	if u, err := url.Parse(dest); err == nil && u.Scheme == "file" {
		root := filepath.FromSlash(path.Clean("/" + u.Path))
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", backup.ErrNotFound, dest)
		}
	}
	return s.cfg.Backups.Open(dest)
}

// orEmpty stands in for a deleted cluster: no spec, so the defaults apply.
func orEmpty(c *spec.MySQLCluster) *spec.MySQLCluster {
	if c == nil {
		return &spec.MySQLCluster{}
	}
	return c
}

// deleteBackup deletes a complete backup from its target, or forgets a
// failed one; one being taken cannot be deleted.
func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) {
	ns, name, id := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("id")
	items, ok := s.backups(w, r)
	if !ok {
		return
	}
	i := slices.IndexFunc(items, func(b spec.Backup) bool { return b.ID == id })
	if i < 0 {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, fmt.Sprintf("cluster %s/%s has no backup %s", ns, name, spec.QuoteValue(id)), nil)
		return
	}
	b := items[i]
	switch b.Phase {
	case spec.BackupPhasePending, spec.BackupPhaseRunning:
		writeRefusal(w, ns, name, conflict("backup %s is still being taken; delete it once it has finished", id))
		return
	case spec.BackupPhaseComplete:
		t, err := s.cfg.Backups.Open(b.Destination)
		if err == nil {
			err = backup.Delete(r.Context(), t, ns, name, id)
			t.Close()
		}
		if err != nil {
			s.writeTargetError(w, b.Destination, err)
			return
		}
	}
	if err := s.forgetJob(r.Context(), ns, name, id); err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("backup deleted", "cluster", ns+"/"+name, "backup", id, "destination", b.Destination)
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) forgetJob(ctx context.Context, ns, name, id string) error {
	jobs, err := s.cfg.Backups.ListBackupJobs(ctx, ns, name)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.ID == id {
			return s.cfg.Backups.DeleteBackupJob(ctx, j)
		}
	}
	return nil
}

// backups gathers a cluster's backups, oldest first.
func (s *Server) backups(w http.ResponseWriter, r *http.Request) ([]spec.Backup, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return nil, false
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeStoreError(w, err)
		return nil, false
	}
	dest, ok := destinationParam(w, r)
	if !ok {
		return nil, false
	}
	var jobs []*store.BackupJob
	if c != nil {
		if dest == "" {
			dest = s.cfg.Backups.Destination(c)
		}
		if jobs, err = s.cfg.Backups.ListBackupJobs(r.Context(), ns, name); err != nil {
			s.writeStoreError(w, err)
			return nil, false
		}
	} else if dest == "" {
		dest = s.cfg.Backups.Destination(orEmpty(nil))
	}
	var items []spec.Backup
	if dest != "" {
		t, err := s.openToRead(dest)
		var ms []backup.Manifest
		if err == nil {
			ms, err = backup.List(r.Context(), t, ns, name)
			t.Close()
		} else if errors.Is(err, backup.ErrNotFound) {
			err = nil // a destination that does not exist yet holds no backups
		}
		if err != nil {
			s.writeTargetError(w, dest, err)
			return nil, false
		}
		for _, m := range ms {
			items = append(items, backupOfManifest(m, dest))
		}
	}
	for _, j := range jobs {
		if j.Phase != store.BackupSucceeded {
			items = append(items, backupOfJob(j))
		}
	}
	slices.SortStableFunc(items, func(a, b spec.Backup) int { return strings.Compare(a.ID, b.ID) })
	return items, true
}

// destinationParam reads ?destination=, which must be a destination a spec
// could name.
func destinationParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	dest := r.URL.Query().Get("destination")
	if dest == "" {
		return "", true
	}
	// A destination the request names makes the scheduler connect where it
	// says: only admins may point it somewhere.
	if t := identity(r); t != nil && t.Role != spec.RoleAdmin {
		writeStatus(w, http.StatusForbidden, spec.ReasonForbidden, fmt.Sprintf(
			"token %q (role %s) may not name a backup destination (?destination=): that needs role admin; without it the cluster's own destination is used", t.Name, t.Role), nil)
		return "", false
	}
	if msg := spec.DestinationProblem(dest); msg != "" {
		writeRefusal(w, r.PathValue("namespace"), r.PathValue("name"), invalidField("destination", dest, msg))
		return "", false
	}
	return dest, true
}

func (s *Server) writeTargetError(w http.ResponseWriter, dest string, err error) {
	if errors.Is(err, backup.ErrNotFound) {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, err.Error(), nil)
		return
	}
	s.log.Warn("backup target failed", "destination", dest, "err", err)
	writeStatus(w, http.StatusServiceUnavailable, spec.ReasonServiceUnavailable,
		fmt.Sprintf("the backup destination %s did not answer: %v", dest, err), nil)
}

func backupOfManifest(m backup.Manifest, dest string) spec.Backup {
	return spec.Backup{
		ID: m.ID, Namespace: m.Namespace, Cluster: m.Cluster, Phase: spec.BackupPhaseComplete, Instance: m.Instance,
		Destination: dest, StartedAt: timePtr(m.StartedAt), FinishedAt: timePtr(m.FinishedAt),
		Duration: m.Duration().Round(time.Millisecond).String(), Size: m.Size, RawSize: m.RawSize, SHA256: m.SHA256,
		GTIDPosition: m.GTIDPosition, Flavor: m.Flavor, ServerVersion: m.ServerVersion, Databases: m.Databases,
	}
}

func backupOfJob(j *store.BackupJob) spec.Backup {
	b := spec.Backup{
		ID: j.ID, Namespace: j.Namespace, Cluster: j.Cluster, Trigger: j.Trigger, Instance: j.Instance,
		Destination: j.Destination, RequestedAt: timePtr(j.RequestedAt), Message: j.Message,
	}
	switch j.Phase {
	case store.BackupPending:
		b.Phase = spec.BackupPhasePending
	case store.BackupLaunched:
		b.Phase, b.StartedAt = spec.BackupPhaseRunning, timePtr(j.LaunchedAt)
	case store.BackupFailed:
		b.Phase, b.FinishedAt = spec.BackupPhaseFailed, timePtr(j.FinishedAt)
	default:
		b.Phase, b.FinishedAt, b.Size, b.GTIDPosition = spec.BackupPhaseComplete, timePtr(j.FinishedAt), j.Size, j.GTIDPosition
	}
	return b
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// checkRestore makes sure a new cluster's spec.restore names a backup that
// exists and fits, and for a point-in-time restore that the archive after
// it has no gap, so that a typo is refused at apply rather than found by a
// task that fails to start.
func (s *Server) checkRestore(ctx context.Context, c *spec.MySQLCluster) spec.ErrorList {
	if c.Spec.Restore == nil || s.cfg.Backups == nil {
		return nil
	}
	r := c.Spec.Restore
	cluster, id, _ := spec.SplitRestoreFrom(r.From)
	dest := s.cfg.Backups.RestoreDestination(c)
	bad := func(field, value, detail string) spec.ErrorList {
		return spec.ErrorList{{Field: field, Type: spec.ErrorTypeInvalid, Value: fmt.Sprintf("%q", value), Detail: detail}}
	}
	t, err := s.openToRead(dest)
	if err != nil {
		return bad("spec.restore.from", r.From, fmt.Sprintf("cannot open %s: %v", dest, err))
	}
	defer t.Close()
	m, err := backup.ReadManifest(ctx, t, c.Metadata.Namespace, cluster, id)
	switch {
	case err != nil:
		return bad("spec.restore.from", r.From, fmt.Sprintf("cannot read that backup in %s (%v); mysosctl backup list %s shows the backups there", dest, err, cluster))
	case m.Flavor != c.Spec.Flavor:
		return bad("spec.restore.from", r.From, fmt.Sprintf("the backup is of a %s server and spec.flavor is %s: restore into the same flavour", m.Flavor, c.Spec.Flavor))
	case r.PointInTime == "":
		return nil
	}
	if at, _, _ := spec.ParsePointInTime(r.PointInTime); at != nil && at.Before(m.FinishedAt) {
		return bad("spec.restore.pointInTime", r.PointInTime, fmt.Sprintf(
			"backup %s was taken until %s, after this point in time: restore from an older backup", id, m.FinishedAt.Format(time.RFC3339)))
	}
	from, err := mysql.ParseGTIDSet(m.Flavor, m.GTIDPosition)
	if err == nil {
		_, err = backup.Chain(ctx, t, c.Metadata.Namespace, cluster, m.ClusterUID, from)
	}
	if err != nil {
		return bad("spec.restore.pointInTime", r.PointInTime, fmt.Sprintf(
			"the binary logs archived after backup %s cannot be replayed (%v); was spec.backup.binlogArchiving on for %s?", id, err, cluster))
	}
	return nil
}
