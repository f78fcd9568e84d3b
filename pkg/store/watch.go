package store

import (
	"context"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// relistDelay spaces out re-lists after a broken watch so a down etcd is not
// hammered.
const relistDelay = time.Second

// WatchKeys sends the "namespace/name" key of every cluster whose spec is
// created, changed or deleted, starting with every cluster that exists. It is
// the informer of a level-triggered controller: a key says "look again", never
// what changed. When the watch breaks (compaction, etcd restart) it lists
// again, so no change is missed. The channel closes when ctx ends.
func (s *Store) WatchKeys(ctx context.Context) <-chan string {
	out := make(chan string, 64)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			rev, err := s.sendAllKeys(ctx, out)
			if err == nil {
				s.forwardWatch(ctx, rev+1, out)
			} else {
				slog.Warn("list clusters for watch failed", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(relistDelay):
			}
		}
	}()
	return out
}

func (s *Store) sendAllKeys(ctx context.Context, out chan<- string) (int64, error) {
	clusters, rev, err := s.List(ctx, "")
	if err != nil {
		return 0, err
	}
	for _, c := range clusters {
		select {
		case out <- c.Key():
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return rev, nil
}

// forwardWatch relays watch events until the watch fails or ctx ends.
func (s *Store) forwardWatch(ctx context.Context, fromRev int64, out chan<- string) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	prefix := s.specPrefix("")
	for resp := range s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev)) {
		if err := resp.Err(); err != nil {
			slog.Warn("cluster watch broke; listing again", "err", err)
			return
		}
		for _, ev := range resp.Events {
			select {
			case out <- strings.TrimPrefix(string(ev.Kv.Key), prefix):
			case <-ctx.Done():
				return
			}
		}
	}
}
