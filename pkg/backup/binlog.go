package backup

// This file lays the binary-log archive out in a Target, for point-in-time
// recovery: <namespace>/<cluster>/binlog/ holds segments, each a binary-log
// file of whole transactions compressed with zstd (<name>.binlog.zst), and
// beside each its manifest (<name>.json), written last: a segment without
// its manifest is an upload that failed or is in progress, never used.
//
// A segment's name is the sequence number of GTID domain 0 at its end,
// zero-padded, then the UTC time it was stored, so that names sort as the
// segments were written. Mysos uses domain 0 only; with several domains,
// segments holding no domain-0 transaction are ordered by their times
// alone, which holds for the segments of one archiver at a time.
//
// The catalog compares positions through the Position interface, which
// pkg/mysql's GTIDSet implements: it cannot import pkg/mysql, whose tests
// reach this package through the store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FormatBinlogZstd is a binary-log file compressed with zstd: the 4-byte
// magic, a Format_description event, then whole transactions' events.
const FormatBinlogZstd = "binlog+zstd"

// Suffixes of a segment's objects.
const (
	segmentSuffix  = ".binlog.zst"
	manifestSuffix = ".json"
)

// segmentTimeLayout is the time part of a segment's name.
const segmentTimeLayout = "20060102T150405.000000000Z"

var segmentNameRE = regexp.MustCompile(`^[0-9]{20}-[0-9]{8}T[0-9]{6}\.[0-9]{9}Z$`)

// ErrGap: the archive lacks transactions between two segments, or between
// the position to replay from and its segments.
var ErrGap = errors.New("the binlog archive has a gap")

// SegmentManifest describes one archived segment of binary log.
type SegmentManifest struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Cluster    string `json:"cluster"`
	ClusterUID string `json:"clusterUID"`
	// Instance is the member the segment was streamed from.
	Instance      string `json:"instance"`
	Flavor        string `json:"flavor"`
	ServerVersion string `json:"serverVersion"`
	// Start is the GTID position before the segment's first transaction
	// (what a replica connecting there sends), End the position after its
	// last; "" is the empty position.
	Start        string `json:"start"`
	End          string `json:"end"`
	FirstGTID    string `json:"firstGTID"`
	LastGTID     string `json:"lastGTID"`
	Transactions int    `json:"transactions"`
	// FirstEventTime and LastEventTime are the binary-log timestamps (whole
	// seconds) of the first and last transactions' GTID events: when their
	// committing statement started.
	FirstEventTime time.Time `json:"firstEventTime"`
	LastEventTime  time.Time `json:"lastEventTime"`
	CreatedAt      time.Time `json:"createdAt"`
	// Payload is the binary log, beside the manifest.
	Payload
}

// Position is a replication position, as the catalog compares them:
// pkg/mysql's GTIDSet (a MariaDB position: per domain, the last GTID).
type Position[P any] interface {
	// Contains reports whether every transaction of o is in the position.
	Contains(o P) bool
	// Union is the position holding both.
	Union(o P) P
	String() string
	// ParseSameFlavor parses a position stored in the catalog, in the
	// syntax of this one.
	ParseSameFlavor(text string) (P, error)
}

// BinlogDir holds a cluster's archived binary logs.
func BinlogDir(ns, cluster string) string { return path.Join(ns, cluster, "binlog") }

// SegmentName names a segment whose end has sequence number seq in domain
// 0, stored at t.
func SegmentName(seq uint64, t time.Time) string {
	return fmt.Sprintf("%020d-%s", seq, t.UTC().Format(segmentTimeLayout))
}

// domain0Seq is the sequence number of domain 0 in a MariaDB position
// ("0-1-42,1-3-7"), 0 if it has none.
func domain0Seq(pos string) (uint64, error) {
	for _, elem := range strings.Split(pos, ",") {
		parts := strings.Split(strings.TrimSpace(elem), "-")
		if len(parts) == 3 && parts[0] == "0" {
			return strconv.ParseUint(parts[2], 10, 64)
		}
	}
	return 0, nil
}

func (m SegmentManifest) what() string { return "binlog segment " + m.Cluster + "/" + m.Name }

// positions parses a segment's start and end like pos.
func positions[P Position[P]](m SegmentManifest, pos P) (start, end P, err error) {
	if start, err = pos.ParseSameFlavor(m.Start); err != nil {
		return start, end, fmt.Errorf("%s: its start position: %w", m.what(), err)
	}
	if end, err = pos.ParseSameFlavor(m.End); err != nil {
		return start, end, fmt.Errorf("%s: its end position: %w", m.what(), err)
	}
	return start, end, nil
}

// check tells whether m can describe a stored segment.
func (m SegmentManifest) check() error {
	if err := checkCluster(m.Namespace, m.Cluster); err != nil {
		return err
	}
	if !segmentNameRE.MatchString(m.Name) {
		return fmt.Errorf("%s: the name is not one SegmentName makes", m.what())
	}
	if m.Format != FormatBinlogZstd || m.Object != m.Name+segmentSuffix {
		return fmt.Errorf("%s: format %q, object %q; want %q, %q", m.what(), m.Format, m.Object, FormatBinlogZstd, m.Name+segmentSuffix)
	}
	return nil
}

// WriteSegment stores the binary log r yields as a segment that m
// describes: the data first, then the manifest, which completes it. It
// fills in the name (from m.End and the time), the object and its sizes
// and checksum, and returns the manifest stored.
func WriteSegment(ctx context.Context, t Target, m SegmentManifest, r io.Reader) (SegmentManifest, error) {
	seq, err := domain0Seq(m.End)
	if err != nil {
		return SegmentManifest{}, fmt.Errorf("binlog segment ending at %q: %w", m.End, err)
	}
	m.CreatedAt = time.Now().UTC()
	m.Name = SegmentName(seq, m.CreatedAt)
	m.Format, m.Object = FormatBinlogZstd, m.Name+segmentSuffix
	if err := m.check(); err != nil {
		return SegmentManifest{}, err
	}
	dir := BinlogDir(m.Namespace, m.Cluster)
	stored, raw, err := Upload(ctx, t, path.Join(dir, m.Object), r)
	if err != nil {
		return SegmentManifest{}, fmt.Errorf("upload %s: %w", m.what(), err)
	}
	m.stored(stored, raw)
	if err := putJSON(ctx, t, path.Join(dir, m.Name+manifestSuffix), m); err != nil {
		// The data stays: without a manifest it is never used (Prune
		// removes it later), and a Put can fail after its rename (a lost
		// reply), leaving a manifest that must not point at nothing.
		return SegmentManifest{}, fmt.Errorf("write the manifest of %s: %w", m.what(), err)
	}
	return m, nil
}

// OpenSegment streams a segment's binary log, decompressed and checked as
// OpenVerified checks a backup's dump: a segment that does not match its
// manifest ends in an ErrCorrupt error naming it.
func OpenSegment(ctx context.Context, t Target, m SegmentManifest) (io.ReadCloser, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return openChecked(ctx, t, m.what(), BinlogDir(m.Namespace, m.Cluster), m.Payload)
}

// ListSegments returns the complete segments of one incarnation of the
// cluster (uid: a cluster deleted and created again under its name starts
// another history, whose GTIDs may repeat the old one's) in name order
// (the order they were written). A segment without a manifest, or whose
// manifest does not parse, is left out.
func ListSegments(ctx context.Context, t Target, ns, cluster, uid string) ([]SegmentManifest, error) {
	complete, _, err := scanSegments(ctx, t, ns, cluster)
	if err != nil {
		return nil, err
	}
	var out []SegmentManifest
	for _, name := range complete {
		m, err := readSegmentManifest(ctx, t, ns, cluster, name)
		if errors.Is(err, ErrNotFound) || errors.Is(err, errBadManifest) {
			continue // pruned meanwhile, or never a good segment
		}
		if err != nil {
			return nil, err
		}
		if m.ClusterUID == uid {
			out = append(out, m)
		}
	}
	return out, nil
}

// LastSegment returns the newest complete segment of the incarnation uid;
// ok is false when the archive has none. An archiver resumes at its end.
func LastSegment(ctx context.Context, t Target, ns, cluster, uid string) (m SegmentManifest, ok bool, err error) {
	complete, _, err := scanSegments(ctx, t, ns, cluster)
	if err != nil {
		return SegmentManifest{}, false, err
	}
	for _, name := range slices.Backward(complete) {
		m, err := readSegmentManifest(ctx, t, ns, cluster, name)
		if errors.Is(err, ErrNotFound) || errors.Is(err, errBadManifest) || err == nil && m.ClusterUID != uid {
			continue
		}
		return m, err == nil, err
	}
	return SegmentManifest{}, false, nil
}

// scanSegments sorts the names of the cluster's segments into those with a
// manifest and those with data only.
func scanSegments(ctx context.Context, t Target, ns, cluster string) (complete, dataOnly []string, err error) {
	if err := checkCluster(ns, cluster); err != nil {
		return nil, nil, err
	}
	dir := BinlogDir(ns, cluster) + "/"
	objects, err := t.List(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	manifest := map[string]bool{}
	for _, o := range objects {
		base := strings.TrimPrefix(o.Name, dir)
		for _, suffix := range []string{segmentSuffix, manifestSuffix} {
			if name, ok := strings.CutSuffix(base, suffix); ok && segmentNameRE.MatchString(name) {
				manifest[name] = manifest[name] || suffix == manifestSuffix
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(manifest)) {
		if manifest[name] {
			complete = append(complete, name)
		} else {
			dataOnly = append(dataOnly, name)
		}
	}
	return complete, dataOnly, nil
}

func readSegmentManifest(ctx context.Context, t Target, ns, cluster, name string) (SegmentManifest, error) {
	b, err := readSmall(ctx, t, path.Join(BinlogDir(ns, cluster), name+manifestSuffix))
	if err != nil {
		return SegmentManifest{}, fmt.Errorf("binlog segment %s/%s: read its manifest: %w", cluster, name, err)
	}
	var m SegmentManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return SegmentManifest{}, fmt.Errorf("binlog segment %s/%s in %s: %w: %v", cluster, name, t, errBadManifest, err)
	}
	if m.Namespace != ns || m.Cluster != cluster || m.Name != name {
		return SegmentManifest{}, fmt.Errorf("binlog segment %s/%s in %s: %w: it names %s/%s/%s", cluster, name, t, errBadManifest, m.Namespace, m.Cluster, m.Name)
	}
	if err := m.check(); err != nil {
		return SegmentManifest{}, fmt.Errorf("%w: %v", errBadManifest, err)
	}
	return m, nil
}

// Chain returns the segments of incarnation uid to replay, in order, to go
// from position from (a full backup's) to the end of the archive: those that bring a
// transaction from lacks, each starting at or before the end of the one
// before it (the first at or before from). Segments that overlap (a
// relaunched archiver streaming some transactions again) are all
// returned; whoever replays them skips the transactions the position
// reached already holds. A segment that starts after that position is a
// gap: Chain fails with ErrGap. An empty chain means the archive holds
// nothing after from.
func Chain[P Position[P]](ctx context.Context, t Target, ns, cluster, uid string, from P) ([]SegmentManifest, error) {
	segs, err := ListSegments(ctx, t, ns, cluster, uid)
	if err != nil {
		return nil, err
	}
	var chain []SegmentManifest
	cur := from
	for _, m := range segs {
		start, end, err := positions(m, from)
		if err != nil {
			return nil, err
		}
		if cur.Contains(end) {
			continue // nothing new
		}
		if !cur.Contains(start) {
			return nil, gapError(cluster, chain, cur, m)
		}
		chain, cur = append(chain, m), cur.Union(end)
	}
	return chain, nil
}

func gapError(cluster string, chain []SegmentManifest, cur fmt.Stringer, next SegmentManifest) error {
	if len(chain) == 0 {
		return &archiveGap{fmt.Sprintf("the archive of %s has a gap: replay starts at %s but the first segment after it, %s, starts at %s",
			cluster, show(cur.String()), next.Name, show(next.Start))}
	}
	last := chain[len(chain)-1]
	return &archiveGap{fmt.Sprintf("the archive of %s has a gap: segment %s ends at %s but the next, %s, starts at %s",
		cluster, last.Name, show(last.End), next.Name, show(next.Start))}
}

// archiveGap says where the gap is and is ErrGap.
type archiveGap struct{ msg string }

func (e *archiveGap) Error() string        { return e.msg }
func (e *archiveGap) Is(target error) bool { return target == ErrGap }

// show names a position in a message, the empty one too.
func show(pos string) string {
	if pos != "" {
		return pos
	}
	return "the empty position"
}

// Prune deletes the segments of incarnation uid that a replay from keepFrom (the position of
// the oldest full backup kept) does not need, those whose end it
// contains, each manifest first; and data without a manifest older than
// the newest segment deleted (an upload that failed: one in progress is
// always newer than every complete segment). It returns the names of the
// segments deleted.
func Prune[P Position[P]](ctx context.Context, t Target, ns, cluster, uid string, keepFrom P) ([]string, error) {
	segs, err := ListSegments(ctx, t, ns, cluster, uid)
	if err != nil {
		return nil, err
	}
	dir := BinlogDir(ns, cluster)
	var deleted []string
	for _, m := range segs {
		_, end, err := positions(m, keepFrom)
		if err != nil {
			return deleted, err
		}
		if !keepFrom.Contains(end) {
			continue
		}
		if err := deleteObjects(ctx, t, path.Join(dir, m.Name+manifestSuffix), path.Join(dir, m.Object)); err != nil {
			return deleted, fmt.Errorf("prune %s: %w", m.what(), err)
		}
		deleted = append(deleted, m.Name)
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	return deleted, pruneDataOnly(ctx, t, ns, cluster, deleted[len(deleted)-1])
}

// pruneDataOnly deletes the data without manifest named before newest.
func pruneDataOnly(ctx context.Context, t Target, ns, cluster, newest string) error {
	_, dataOnly, err := scanSegments(ctx, t, ns, cluster)
	if err != nil {
		return err
	}
	for _, name := range dataOnly {
		if name < newest {
			if err := deleteObjects(ctx, t, path.Join(BinlogDir(ns, cluster), name+segmentSuffix)); err != nil {
				return fmt.Errorf("prune the incomplete binlog segment %s/%s: %w", cluster, name, err)
			}
		}
	}
	return nil
}

// deleteObjects deletes names in order; one already gone is no failure.
func deleteObjects(ctx context.Context, t Target, names ...string) error {
	for _, name := range names {
		if err := t.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
