package store

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestRequestChangedOnlyForWhatUsersAsk(t *testing.T) {
	put := func(prev, next string) *clientv3.Event {
		ev := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Value: []byte(next)}}
		if prev != "" {
			ev.PrevKv = &mvccpb.KeyValue{Value: []byte(prev)}
		}
		return ev
	}
	const plain = `{"uid":"u","status":{"phase":"Running"}}`
	const degraded = `{"uid":"u","status":{"phase":"Degraded"}}`
	const requested = `{"uid":"u","status":{"phase":"Running","operation":{"id":"s1","step":"Requested"}}}`
	const acked = `{"uid":"u","status":{"lastFailover":{"id":"f1","acknowledged":true}}}`
	const unacked = `{"uid":"u","status":{"lastFailover":{"id":"f1"}}}`
	for _, c := range []struct {
		name string
		ev   *clientv3.Event
		want bool
	}{
		{"phase only", put(plain, degraded), false},
		{"first status without a request", put("", plain), false},
		{"switchover requested", put(plain, requested), true},
		{"operation cleared", put(requested, plain), true},
		{"failover acknowledged", put(unacked, acked), true},
		{"deleted", &clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{}}, false},
	} {
		if got := requestChanged(c.ev); got != c.want {
			t.Errorf("%s: requestChanged = %v; want %v", c.name, got, c.want)
		}
	}
}
