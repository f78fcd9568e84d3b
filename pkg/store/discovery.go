package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// DiscoveryRecord is what <prefix>/discovery/<ns>/<name> holds: where
// clients connect, for routers (mysos-router) and anyone who reads etcd.
// The epoch rises with every change of the primary or the replicas; the
// replicas' lag changes without one (it is no change of routing, only of
// which replicas a lag bound admits).
type DiscoveryRecord struct {
	UID string `json:"uid"`
	spec.Endpoints
	// ReplicaLag is each replica's Seconds_Behind_Master as last observed;
	// a replica without an entry has an unknown lag.
	ReplicaLag map[string]float64 `json:"replicaLagSeconds,omitempty"`
}

type discoveryRecord = DiscoveryRecord

func (s *Store) discoveryKey(ns, name string) string {
	return s.prefix + "/discovery/" + ns + "/" + name
}

// PublishEndpoints writes the cluster's endpoints and its replicas' lag
// unless they are what is published already, bumping the epoch on every
// change of the endpoints (a new incarnation of the name starts above the
// old one's epoch too), and returns what is published.
func (s *Store) PublishEndpoints(ctx context.Context, ns, name, uid string, e spec.Endpoints, lag map[string]float64) (spec.Endpoints, error) {
	key := s.discoveryKey(ns, name)
	if len(lag) == 0 {
		lag = nil
	}
	for range maxCASRetries {
		cur, rev, err := s.readDiscovery(ctx, key)
		if err != nil {
			return spec.Endpoints{}, err
		}
		same := cur.UID == uid && cur.Primary == e.Primary && slices.Equal(cur.Replicas, e.Replicas)
		if same && maps.Equal(cur.ReplicaLag, lag) {
			return cur.Endpoints, nil
		}
		epoch := cur.Epoch + 1
		if same {
			epoch = cur.Epoch
		}
		next := discoveryRecord{UID: uid, Endpoints: spec.Endpoints{Primary: e.Primary, Replicas: slices.Clone(e.Replicas), Epoch: epoch}, ReplicaLag: lag}
		ok, err := s.putJSONIfUnchanged(ctx, key, rev, next)
		if err != nil {
			return spec.Endpoints{}, fmt.Errorf("publish endpoints of %s/%s: %w", ns, name, err)
		}
		if ok {
			return next.Endpoints, nil
		}
	}
	return spec.Endpoints{}, fmt.Errorf("publish endpoints of %s/%s: %w", ns, name, ErrConflict)
}

func (s *Store) readDiscovery(ctx context.Context, key string) (discoveryRecord, int64, error) {
	var d discoveryRecord
	rev, err := s.readJSON(ctx, key, &d)
	if err != nil {
		return discoveryRecord{}, 0, fmt.Errorf("read endpoints: %w", err)
	}
	return d, rev, nil
}

// WatchDiscovery sends a cluster's discovery record: the current one first
// (when there is one), then every change, in order, until ctx ends. When the
// watch breaks (compaction, etcd restart) it reads the record again and
// goes on from there, so a reader never misses the latest record; it may
// see one twice.
func (s *Store) WatchDiscovery(ctx context.Context, ns, name string) <-chan DiscoveryRecord {
	out := make(chan DiscoveryRecord, 4)
	key := s.discoveryKey(ns, name)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			rev, err := s.sendDiscovery(ctx, key, out)
			if err == nil {
				err = s.forwardDiscovery(ctx, key, rev+1, out)
			}
			if err != nil && ctx.Err() == nil {
				slog.Warn("discovery watch broke; reading again", "key", key, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(relistDelay):
			}
		}
	}()
	return out
}

// sendDiscovery sends the record as it is now and returns the revision read.
func (s *Store) sendDiscovery(ctx context.Context, key string, out chan<- DiscoveryRecord) (int64, error) {
	rctx, cancel := s.withTimeout(ctx)
	resp, err := s.cli.Get(rctx, key)
	cancel()
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) > 0 {
		var d DiscoveryRecord
		if err := json.Unmarshal(resp.Kvs[0].Value, &d); err != nil {
			return 0, fmt.Errorf("decode %s: %w", key, err)
		}
		select {
		case out <- d:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return resp.Header.Revision, nil
}

// forwardDiscovery relays the record's changes from rev on until the
// watch fails or ctx ends.
func (s *Store) forwardDiscovery(ctx context.Context, key string, rev int64, out chan<- DiscoveryRecord) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range s.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue // a record is never deleted while its name may come back
			}
			var d DiscoveryRecord
			if err := json.Unmarshal(ev.Kv.Value, &d); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			select {
			case out <- d:
			case <-ctx.Done():
				return nil
			}
		}
	}
	return ctx.Err()
}
