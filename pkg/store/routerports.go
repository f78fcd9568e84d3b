package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// Router ports (spec.router) belong to the schedulers' hosts, so no two
// clusters may name one. Each is claimed by a key, <prefix>/routerports/
// <port> holding the owner's "namespace/name", created in the transaction
// that stores a spec naming the port and deleted in the one that stops
// naming it: exact against racing applies, and without making applies
// that want different ports wait for each other.

// ErrPortTaken: a spec names a router port another cluster holds; the
// error is a *PortTakenError.
var ErrPortTaken = errors.New("router port taken")

// PortTakenError names the port and the cluster that holds it.
type PortTakenError struct {
	Port             int32
	Namespace, Owner string
}

func (e *PortTakenError) Error() string {
	return fmt.Sprintf("router port %d is held by cluster %s/%s", e.Port, e.Namespace, e.Owner)
}

func (e *PortTakenError) Unwrap() error { return ErrPortTaken }

func (s *Store) portKey(p int32) string { return fmt.Sprintf("%s/routerports/%d", s.prefix, p) }

// portClaims moves owner's claims from the ports of before to those of
// after (either nil): compares that each new port is free, operations
// that claim the new ports and release the old ones (only where owner
// still holds them), and reads that tell, when the compares fail, who
// holds a port.
type portClaims struct {
	cmps         []clientv3.Cmp
	ops, reads   []clientv3.Op
	claimedPorts []int32
}

func (s *Store) claimPorts(owner string, before, after *spec.RouterSpec) portClaims {
	var c portClaims
	held := before.Ports()
	wanted := after.Ports()
	has := func(ps []spec.RouterPort, p int32) bool {
		return slices.ContainsFunc(ps, func(x spec.RouterPort) bool { return x.Port == p })
	}
	for _, p := range wanted {
		key := s.portKey(p.Port)
		if slices.Contains(c.claimedPorts, p.Port) {
			continue // one port named twice (validation refuses it): one claim
		}
		if has(held, p.Port) {
			// Held already; a claim missing (a spec stored before claims,
			// or whose claim was cleared by hand) is written back.
			c.ops = append(c.ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(key, owner)}, nil))
			continue
		}
		c.cmps = append(c.cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		c.ops = append(c.ops, clientv3.OpPut(key, owner))
		c.reads = append(c.reads, clientv3.OpGet(key))
		c.claimedPorts = append(c.claimedPorts, p.Port)
	}
	for _, p := range held {
		if !has(wanted, p.Port) {
			c.ops = append(c.ops, s.releasePort(owner, p.Port))
		}
	}
	return c
}

// releasePort deletes a port's claim if owner holds it: a claim of another
// cluster (a spec written by hand past the API) stays.
func (s *Store) releasePort(owner string, p int32) clientv3.Op {
	key := s.portKey(p)
	return clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(key), "=", owner)}, []clientv3.Op{clientv3.OpDelete(key)}, nil)
}

// releaseAll releases every port a spec's router names.
func (s *Store) releaseAll(owner string, r *spec.RouterSpec) []clientv3.Op {
	var ops []clientv3.Op
	for _, p := range r.Ports() {
		ops = append(ops, s.releasePort(owner, p.Port))
	}
	return ops
}

// taken reads the claims' reads among a failed transaction's responses
// (from index first on) and returns the first port another cluster holds.
func (c portClaims) taken(resps []*pb.ResponseOp, first int) error {
	for i, port := range c.claimedPorts {
		if first+i >= len(resps) {
			break
		}
		if kvs := resps[first+i].GetResponseRange().Kvs; len(kvs) > 0 {
			ns, name, _ := strings.Cut(string(kvs[0].Value), "/")
			return &PortTakenError{Port: port, Namespace: ns, Owner: name}
		}
	}
	return nil
}

// portTakenOrRaced turns a failed claim into the error to return: taken
// (nil: no claim failed) unless its owner's stored spec does not name the
// port, in which case the claim was left behind by a spec deleted or
// written past the store (etcdctl, an older scheduler). Such a claim is
// released, guarded against its becoming real meanwhile, and the write
// reported raced, so that the caller checks and writes again.
func (s *Store) portTakenOrRaced(ctx context.Context, taken error) error {
	var pt *PortTakenError
	if !errors.As(taken, &pt) {
		return ErrRaced
	}
	claim, specKey := s.portKey(pt.Port), s.specKey(pt.Namespace, pt.Owner)
	owner := pt.Namespace + "/" + pt.Owner
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(claim), clientv3.OpGet(specKey)).Commit()
	if err != nil {
		return taken
	}
	claims, specs := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(claims) == 0 || string(claims[0].Value) != owner {
		return ErrRaced // the claim moved since: look again
	}
	var specRev int64 // 0: no spec, which ModRevision compares as
	if len(specs) > 0 {
		specRev = specs[0].ModRevision
		if c, err := decodeSpec(specs[0].Value, specRev); err != nil || slices.ContainsFunc(c.Spec.Router.Ports(),
			func(p spec.RouterPort) bool { return p.Port == pt.Port }) {
			return taken // a real claim (or a spec this scheduler cannot read: leave it)
		}
	}
	_, err = s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(claim), "=", owner), clientv3.Compare(clientv3.ModRevision(specKey), "=", specRev)).
		Then(clientv3.OpDelete(claim)).
		Commit()
	if err != nil {
		return taken
	}
	return ErrRaced
}
