package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leadership is held while Done is open; Resign gives it up early.
type Leadership struct {
	session  *concurrency.Session
	election *concurrency.Election
}

// Campaign blocks until this process (identified by id) leads the schedulers
// sharing this store, or ctx ends. Only the leader may act on Mesos, so two
// schedulers never launch the same instance. ttlSeconds is how long leadership
// outlives a process that stops renewing it.
func (s *Store) Campaign(ctx context.Context, id string, ttlSeconds int) (*Leadership, error) {
	session, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttlSeconds), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("open election session: %w", err)
	}
	election := concurrency.NewElection(session, s.prefix+"/leader")
	if err := election.Campaign(ctx, id); err != nil {
		session.Close()
		return nil, fmt.Errorf("campaign for leadership: %w", err)
	}
	return &Leadership{session: session, election: election}, nil
}

// Leader returns the id of the current leader, or "" when there is none.
func (s *Store) Leader(ctx context.Context) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"/leader/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil {
		return "", fmt.Errorf("read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Done is closed when leadership is lost (session expired or closed).
func (l *Leadership) Done() <-chan struct{} { return l.session.Done() }

// Resign gives up leadership and closes the session.
func (l *Leadership) Resign(ctx context.Context) error {
	err := l.election.Resign(ctx)
	if cerr := l.session.Close(); err == nil {
		err = cerr
	}
	return err
}
