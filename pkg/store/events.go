package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// MaxEventsPerCluster bounds each cluster's event history; recording one
// more deletes the oldest. Events are rare (a failover writes a dozen), so
// this keeps many operations' worth without letting a flapping cluster grow
// etcd without bound.
const MaxEventsPerCluster = 200

// maxTxnOps stays under etcd's default limit of operations per transaction
// (--max-txn-ops, 128).
const maxTxnOps = 100

// eventsPrefix is where the events of one cluster live, of a namespace when
// name is empty, of everything when ns is empty. It ends with a slash so
// that cluster "shop" never reaches into "shop2".
func (s *Store) eventsPrefix(ns, name string) string {
	switch {
	case ns == "":
		return s.prefix + "/events/"
	case name == "":
		return s.prefix + "/events/" + ns + "/"
	default:
		return s.prefix + "/events/" + ns + "/" + name + "/"
	}
}

// eventKey orders a cluster's events by time: the nanoseconds are zero-padded
// so that etcd's byte order is time order, and a random suffix keeps two
// events of the same nanosecond apart.
func (s *Store) eventKey(ev *spec.Event) string {
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	return fmt.Sprintf("%s%020d-%s", s.eventsPrefix(ev.Namespace, ev.Cluster), ev.Time.UnixNano(), hex.EncodeToString(suffix[:]))
}

// RecordEvent stores ev under its cluster (ev.Namespace, ev.Cluster), timed
// now when ev.Time is zero, and trims the cluster's history to
// MaxEventsPerCluster.
func (s *Store) RecordEvent(ctx context.Context, ev spec.Event) error {
	if ev.Namespace == "" || ev.Cluster == "" || strings.Contains(ev.Namespace+ev.Cluster, "/") {
		return fmt.Errorf("record event %q: namespace %q and cluster %q must both be names", ev.Reason, ev.Namespace, ev.Cluster)
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	// Before 1970 the padded number would start with '-' and sort wrongly.
	if ev.Time.Before(time.Unix(0, 0)) {
		return fmt.Errorf("record event %q: time %s is before 1970", ev.Reason, ev.Time)
	}
	ev.Time = ev.Time.UTC()
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.eventKey(&ev), string(raw)); err != nil {
		return fmt.Errorf("record event of %s/%s: %w", ev.Namespace, ev.Cluster, err)
	}
	return s.trimEvents(ctx, ev.Namespace, ev.Cluster)
}

// trimEvents deletes a cluster's oldest events beyond MaxEventsPerCluster.
// The count and the keys are read at one revision and deleted by name, so
// concurrent trims delete the same events rather than each its own share,
// and an older event written meanwhile is not caught in a range.
func (s *Store) trimEvents(ctx context.Context, ns, name string) error {
	prefix := s.eventsPrefix(ns, name)
	count, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("count events of %s/%s: %w", ns, name, err)
	}
	excess := count.Count - MaxEventsPerCluster
	if excess <= 0 {
		return nil
	}
	oldest, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(count.Header.Revision),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(excess))
	if err != nil {
		return fmt.Errorf("find the oldest events of %s/%s: %w", ns, name, err)
	}
	for chunk := range slices.Chunk(oldest.Kvs, maxTxnOps) {
		ops := make([]clientv3.Op, len(chunk))
		for i, kv := range chunk {
			ops[i] = clientv3.OpDelete(string(kv.Key))
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("trim events of %s/%s: %w", ns, name, err)
		}
	}
	return nil
}

// ListEvents returns the events of one cluster, of every cluster of ns when
// name is empty, or of everything when ns is empty; oldest first.
func (s *Store) ListEvents(ctx context.Context, ns, name string) ([]spec.Event, error) {
	if ns == "" && name != "" {
		return nil, errors.New("list events: a cluster name needs its namespace")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.eventsPrefix(ns, name), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]spec.Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ev spec.Event
		if err := json.Unmarshal(kv.Value, &ev); err != nil {
			return nil, fmt.Errorf("decode event %s: %w", strings.TrimPrefix(string(kv.Key), s.prefix), err)
		}
		out = append(out, ev)
	}
	// Keys order each cluster's events by time; across clusters, sort by
	// time, keeping key order (namespace, cluster) among equal times.
	slices.SortStableFunc(out, func(a, b spec.Event) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	return out, nil
}
