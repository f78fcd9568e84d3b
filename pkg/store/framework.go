package store

import (
	"context"
	"fmt"
)

// frameworkIDKey holds the Mesos framework id, so that a restarted or
// newly elected scheduler resumes the same framework and its tasks.
func (s *Store) frameworkIDKey() string { return s.prefix + "/framework/id" }

// FrameworkID returns the stored framework id, "" if none.
func (s *Store) FrameworkID(ctx context.Context) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.frameworkIDKey())
	if err != nil {
		return "", fmt.Errorf("read framework id: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// SetFrameworkID stores the framework id; "" forgets it (Mesos removed the
// framework, so the next subscription starts a new one).
func (s *Store) SetFrameworkID(ctx context.Context, id string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var err error
	if id == "" {
		_, err = s.cli.Delete(ctx, s.frameworkIDKey())
	} else {
		_, err = s.cli.Put(ctx, s.frameworkIDKey(), id)
	}
	if err != nil {
		return fmt.Errorf("store framework id: %w", err)
	}
	return nil
}
