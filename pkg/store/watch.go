package store

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path"
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

// forwardWatch relays watch events until the watch fails or ctx ends:
// every change to a spec, the status changes that ask the scheduler for
// something (a switchover request, a failover acknowledgement), which the
// API writes into the status, and backup jobs (a backup requested).
func (s *Store) forwardWatch(ctx context.Context, fromRev int64, out chan<- string) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	specPrefix, statusPrefix := s.specPrefix(""), s.prefix+"/status/"
	specs := s.cli.Watch(wctx, specPrefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	statuses := s.cli.Watch(wctx, statusPrefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev), clientv3.WithPrevKV())
	jobsPrefix := s.backupPrefix("", "")
	jobs := s.cli.Watch(wctx, jobsPrefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	for {
		var resp clientv3.WatchResponse
		var ok bool
		prefix := specPrefix
		select {
		case resp, ok = <-specs:
		case resp, ok = <-statuses:
			prefix = statusPrefix
		case resp, ok = <-jobs:
			prefix = jobsPrefix
		case <-ctx.Done():
			return
		}
		if !ok || resp.Err() != nil {
			slog.Warn("cluster watch broke; listing again", "err", resp.Err())
			return
		}
		for _, ev := range resp.Events {
			if prefix == statusPrefix && !requestChanged(ev) {
				continue
			}
			key := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			if prefix == jobsPrefix {
				key = path.Dir(key) // <ns>/<name>/<id> → <ns>/<name>
			}
			select {
			case out <- key:
			case <-ctx.Done():
				return
			}
		}
	}
}

// requestChanged reports whether a status write changed what users ask
// through the status: the operation or the failover acknowledgement.
func requestChanged(ev *clientv3.Event) bool {
	if ev.Type != clientv3.EventTypePut {
		return false
	}
	var prev []byte
	if ev.PrevKv != nil {
		prev = ev.PrevKv.Value
	}
	a, b := requestPart(prev), requestPart(ev.Kv.Value)
	return !bytes.Equal(a.Operation, b.Operation) || !bytes.Equal(a.LastFailover, b.LastFailover) || !bytes.Equal(a.Reseed, b.Reseed)
}

type requestFields struct {
	Operation    json.RawMessage `json:"operation"`
	LastFailover json.RawMessage `json:"lastFailover"`
	Reseed       json.RawMessage `json:"reseedRequested"`
}

func requestPart(raw []byte) requestFields {
	var v struct {
		Status requestFields `json:"status"`
	}
	_ = json.Unmarshal(raw, &v) // an unreadable status asks for nothing
	return v.Status
}
