package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mysos-project/mysos/pkg/spec"
)

func (s *Store) quotaKey(ns string) string { return s.prefix + "/quotas/" + ns }

// Quota returns a namespace's quota; ErrNotFound when it has none.
func (s *Store) Quota(ctx context.Context, ns string) (*spec.ResourceQuota, error) {
	var q spec.ResourceQuota
	rev, err := s.readJSON(ctx, s.quotaKey(ns), &q)
	if err != nil {
		return nil, fmt.Errorf("read quota: %w", err)
	}
	if rev == 0 {
		return nil, fmt.Errorf("quota of namespace %q %w", ns, ErrNotFound)
	}
	return &q, nil
}

// SetQuota stores a namespace's quota, replacing any.
func (s *Store) SetQuota(ctx context.Context, q *spec.ResourceQuota) error {
	raw, err := json.Marshal(q)
	if err != nil {
		return err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.quotaKey(q.Namespace), string(raw)); err != nil {
		return fmt.Errorf("store quota: %w", err)
	}
	return nil
}

// DeleteQuota removes a namespace's quota; ErrNotFound if it had none.
func (s *Store) DeleteQuota(ctx context.Context, ns string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Delete(ctx, s.quotaKey(ns))
	if err != nil {
		return fmt.Errorf("delete quota: %w", err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("quota of namespace %q %w", ns, ErrNotFound)
	}
	return nil
}
