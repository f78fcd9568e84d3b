package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/mysos-project/mysos/pkg/spec"
)

// discoveryRecord is what <prefix>/discovery/<ns>/<name> holds: where
// clients connect, for routers and anyone who reads etcd.
type discoveryRecord struct {
	UID string `json:"uid"`
	spec.Endpoints
}

func (s *Store) discoveryKey(ns, name string) string {
	return s.prefix + "/discovery/" + ns + "/" + name
}

// PublishEndpoints writes the cluster's endpoints unless they are what is
// published already, bumping the epoch on every change (a new incarnation
// of the name starts above the old one's epoch too), and returns what is
// published.
func (s *Store) PublishEndpoints(ctx context.Context, ns, name, uid string, e spec.Endpoints) (spec.Endpoints, error) {
	key := s.discoveryKey(ns, name)
	for range maxCASRetries {
		cur, rev, err := s.readDiscovery(ctx, key)
		if err != nil {
			return spec.Endpoints{}, err
		}
		if cur.UID == uid && cur.Primary == e.Primary && slices.Equal(cur.Replicas, e.Replicas) {
			return cur.Endpoints, nil
		}
		next := discoveryRecord{UID: uid, Endpoints: spec.Endpoints{Primary: e.Primary, Replicas: slices.Clone(e.Replicas), Epoch: cur.Epoch + 1}}
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
