package backup

// This file lays full backups out in a Target: the directory
// <namespace>/<cluster>/full/<id>/ holds the compressed dump, then its
// manifest.json, written last. A directory without a manifest is a backup
// in progress or a failed one and is never listed as good.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// Names inside a backup's directory, and the one format there is.
const (
	DumpObject     = "dump.sql.zst"
	ManifestObject = "manifest.json"
	// FormatSQLZstd is a logical SQL dump compressed with zstd.
	FormatSQLZstd = "sql+zstd"
)

// idLayout makes IDs that sort as their times do.
const idLayout = "20060102T150405Z"

// Manifest describes one complete full backup.
type Manifest struct {
	ID         string `json:"id"`
	Namespace  string `json:"namespace"`
	Cluster    string `json:"cluster"`
	ClusterUID string `json:"clusterUID"`
	// Instance is the member the backup was copied from.
	Instance      string    `json:"instance"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Flavor        string    `json:"flavor"`
	ServerVersion string    `json:"serverVersion"`
	// GTIDPosition is the position the dump is consistent with, in the
	// flavour's syntax (MariaDB: "0-1-42").
	GTIDPosition string `json:"gtidPosition"`
	// Payload is the dump, in the backup's directory.
	Payload
	Databases []string `json:"databases"`
}

// Payload is what a manifest says of the object it describes (a dump, a
// binary-log segment): its format, its file name beside the manifest, its
// size and SHA-256 as stored (compressed), and its size before compression.
// Embedded, its fields sit at the manifest's top level in JSON.
type Payload struct {
	Format  string `json:"format"`
	Object  string `json:"object"`
	Size    int64  `json:"size"`
	RawSize int64  `json:"rawSize"`
	SHA256  string `json:"sha256"`
}

// stored records an upload's result.
func (p *Payload) stored(s Stored, raw int64) { p.Size, p.RawSize, p.SHA256 = s.Size, raw, s.SHA256 }

// Duration is how long taking the backup took.
func (m Manifest) Duration() time.Duration { return m.FinishedAt.Sub(m.StartedAt) }

// name is how messages call the backup.
func (m Manifest) name() string { return m.Cluster + "/" + m.ID }

// Dir is the directory of one full backup in a target.
func Dir(ns, cluster, id string) string { return path.Join(ns, cluster, "full", id) }

// clusterDir holds every full backup of a cluster.
func clusterDir(ns, cluster string) string { return path.Join(ns, cluster, "full") + "/" }

// NewID is the ID of a backup started at t: its UTC time, to the second.
func NewID(t time.Time) string { return t.UTC().Format(idLayout) }

// ValidID checks that s is an ID as NewID makes them.
func ValidID(s string) error {
	t, err := time.Parse(idLayout, s)
	if err != nil || t.Format(idLayout) != s {
		return fmt.Errorf("backup id %q: want a UTC time like %s", s, idLayout)
	}
	return nil
}

// checkCluster refuses names that would not make one directory level each.
func checkCluster(ns, cluster string) error {
	for _, v := range []string{ns, cluster} {
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\") {
			return fmt.Errorf("backup: namespace %q, cluster %q: want non-empty names without slashes", ns, cluster)
		}
	}
	return nil
}

// ValidCluster checks that a cluster's backups and archive can be stored
// under these names.
func ValidCluster(ns, cluster string) error { return checkCluster(ns, cluster) }

// ValidRef checks that a backup can be stored under these names.
func ValidRef(ns, cluster, id string) error {
	if err := checkCluster(ns, cluster); err != nil {
		return err
	}
	return ValidID(id)
}

// check tells whether m can describe a stored backup.
func (m Manifest) check() error {
	if err := ValidRef(m.Namespace, m.Cluster, m.ID); err != nil {
		return err
	}
	if m.Format != FormatSQLZstd {
		return fmt.Errorf("backup %s: format %q, want %q", m.name(), m.Format, FormatSQLZstd)
	}
	if m.Object == "" || path.Base(m.Object) != m.Object || m.Object == ".." || m.Object == ManifestObject {
		return fmt.Errorf("backup %s: object %q is not a file of the backup's directory", m.name(), m.Object)
	}
	return nil
}

// WriteManifest stores m, which completes the backup: write it only once
// the dump is stored.
func WriteManifest(ctx context.Context, t Target, m Manifest) error {
	if err := m.check(); err != nil {
		return err
	}
	if m.Databases == nil {
		m.Databases = []string{}
	}
	return putJSON(ctx, t, path.Join(Dir(m.Namespace, m.Cluster, m.ID), ManifestObject), m)
}

// putJSON stores v as an indented JSON object.
func putJSON(ctx context.Context, t Target, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = t.Put(ctx, name, bytes.NewReader(append(b, '\n')))
	return err
}

// ReadManifest reads the manifest of a complete backup; ErrNotFound (wrapped)
// when there is none.
func ReadManifest(ctx context.Context, t Target, ns, cluster, id string) (Manifest, error) {
	if err := ValidRef(ns, cluster, id); err != nil {
		return Manifest{}, err
	}
	b, err := readSmall(ctx, t, path.Join(Dir(ns, cluster, id), ManifestObject))
	if errors.Is(err, ErrNotFound) {
		return Manifest{}, fmt.Errorf("%w: %s has no complete backup %s/%s in namespace %s", ErrNotFound, t, cluster, id, ns)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s/%s: read its manifest: %w", cluster, id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("backup %s/%s in %s: %w: %v", cluster, id, t, errBadManifest, err)
	}
	if m.Namespace != ns || m.Cluster != cluster || m.ID != id {
		return Manifest{}, fmt.Errorf("backup %s/%s in %s: %w: it names %s/%s/%s", cluster, id, t, errBadManifest, m.Namespace, m.Cluster, m.ID)
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", errBadManifest, err)
	}
	return m, nil
}

// readSmall reads a whole object that fits in memory: a manifest.
func readSmall(ctx context.Context, t Target, name string) ([]byte, error) {
	r, err := t.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(contextReader{ctx, r}, maxSmallFile+1))
	if err == nil && len(raw) > maxSmallFile {
		err = fmt.Errorf("%s is larger than %d bytes: not a file Mysos wrote", name, maxSmallFile)
	}
	return raw, err
}

// maxSmallFile bounds what readSmall reads: manifests are a few KiB.
const maxSmallFile = 1 << 20

// errBadManifest: a manifest that Mysos did not write as it reads.
var errBadManifest = errors.New("invalid manifest")

// List returns the cluster's complete backups, oldest first. A directory
// without a manifest (a backup in progress, or one that failed) is left
// out, and so is one whose manifest does not parse.
func List(ctx context.Context, t Target, ns, cluster string) ([]Manifest, error) {
	ids, _, err := scan(ctx, t, ns, cluster)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, id := range ids {
		m, err := ReadManifest(ctx, t, ns, cluster, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, errBadManifest) {
			continue // deleted meanwhile, or never a good backup
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ListIncomplete returns the IDs of directories without a manifest, oldest
// first: failed backups, and any backup still being taken, so only remove
// those older than the longest a backup may run.
func ListIncomplete(ctx context.Context, t Target, ns, cluster string) ([]string, error) {
	_, incomplete, err := scan(ctx, t, ns, cluster)
	return incomplete, err
}

// scan sorts the cluster's backup directories into those with a manifest
// and those without, by ID.
func scan(ctx context.Context, t Target, ns, cluster string) (complete, incomplete []string, err error) {
	if err := checkCluster(ns, cluster); err != nil {
		return nil, nil, err
	}
	objects, err := t.List(ctx, clusterDir(ns, cluster))
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, o := range objects {
		id, file, ok := strings.Cut(strings.TrimPrefix(o.Name, clusterDir(ns, cluster)), "/")
		if !ok || ValidID(id) != nil {
			continue
		}
		seen[id] = seen[id] || file == ManifestObject
	}
	for _, id := range slices.Sorted(maps.Keys(seen)) {
		if seen[id] {
			complete = append(complete, id)
		} else {
			incomplete = append(incomplete, id)
		}
	}
	return complete, incomplete, nil
}

// Delete removes a backup: its manifest first, so that a backup deleted
// halfway is no longer listed as good, then its other objects.
func Delete(ctx context.Context, t Target, ns, cluster, id string) error {
	if err := ValidRef(ns, cluster, id); err != nil {
		return err
	}
	dir := Dir(ns, cluster, id)
	found := true
	if err := t.Delete(ctx, path.Join(dir, ManifestObject)); errors.Is(err, ErrNotFound) {
		found = false
	} else if err != nil {
		return fmt.Errorf("delete backup %s/%s: %w", cluster, id, err)
	}
	objects, err := t.List(ctx, dir+"/")
	if err != nil {
		return fmt.Errorf("delete backup %s/%s: %w", cluster, id, err)
	}
	for _, o := range objects {
		if err := t.Delete(ctx, o.Name); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete backup %s/%s: %w", cluster, id, err)
		}
	}
	if !found && len(objects) == 0 {
		return fmt.Errorf("%w: %s has no backup %s/%s in namespace %s", ErrNotFound, t, cluster, id, ns)
	}
	return nil
}
