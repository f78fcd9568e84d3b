package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// Servers opens connections to instances' mysqld: pkg/mysql in production,
// fakes in tests.
type Servers interface {
	Open(ep mysql.Endpoint, flavor string) (Server, error)
}

// Server is what the reconciler says to one mysqld.
type Server interface {
	Status(ctx context.Context) (mysql.Status, error)
	SetReadOnly(ctx context.Context, on bool) error
	// StartReadOnly begins SET GLOBAL read_only=ON and returns once no new
	// write can enter the server's commit pipeline, while commits in
	// progress may still hold read_only back (see stopWrites).
	StartReadOnly(ctx context.Context) (ReadOnlyBarrier, error)
	ReplicateFrom(ctx context.Context, src mysql.Source) error
	ResetReplication(ctx context.Context) error
	EnableSemiSync(ctx context.Context, primary bool, waitCount int, timeout time.Duration) error
	// SemiSyncPrimary reports whether the primary side of semi-sync is on,
	// and how many replicas it waits for.
	SemiSyncPrimary(ctx context.Context) (on bool, waitCount int, err error)
	Databases(ctx context.Context) ([]string, error)
	CreateDatabase(ctx context.Context, name string) error
	// StopReplicaIO, WaitForGTID and KillConnections serve failovers
	// and switchovers (see pkg/mysql). KillConnections ends the sessions
	// waiting for a semi-sync acknowledgement last.
	StopReplicaIO(ctx context.Context) error
	WaitForGTID(ctx context.Context, set mysql.GTIDSet) error
	KillConnections(ctx context.Context, exceptUsers ...string) error
	Close() error
}

// ReadOnlyBarrier is a SET GLOBAL read_only=ON under way; Wait returns once
// it took effect, failed, or ctx ended.
type ReadOnlyBarrier interface {
	Wait(ctx context.Context) error
}

// MySQLServers opens real servers through pkg/mysql.
type MySQLServers struct{}

// Open implements Servers.
func (MySQLServers) Open(ep mysql.Endpoint, flavor string) (Server, error) {
	f, err := mysql.FlavorByName(flavor)
	if err != nil {
		return nil, err
	}
	s, err := mysql.Open(ep, f)
	if err != nil {
		return nil, err
	}
	return mysqlServer{s}, nil
}

// mysqlServer adds the few questions only the reconciler asks.
type mysqlServer struct{ *mysql.Server }

func (s mysqlServer) SemiSyncPrimary(ctx context.Context) (bool, int, error) {
	var on bool
	if s.Flavor().Name() == "mariadb" { // MariaDB always waits for one
		err := s.DB().QueryRowContext(ctx, "SELECT @@rpl_semi_sync_master_enabled").Scan(&on)
		return on, 1, err
	}
	var count int
	err := s.DB().QueryRowContext(ctx, "SELECT @@rpl_semi_sync_source_enabled, @@rpl_semi_sync_source_wait_for_replica_count").Scan(&on, &count)
	return on, count, err
}

func (s mysqlServer) StartReadOnly(ctx context.Context) (ReadOnlyBarrier, error) {
	b, err := s.Server.StartReadOnly(ctx)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (s mysqlServer) CreateDatabase(ctx context.Context, name string) error {
	return s.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`")
}

// semiSyncNever is the semi-sync timeout that means "never fall back to
// asynchronous replication" (the largest MySQL accepts, about 49 days).
const semiSyncNever = 4294967295 * time.Millisecond

// sqlTimeout bounds each change to one server; STOP SLAVE on a semi-sync
// replica may wait for its source's dump thread to end.
const sqlTimeout = 20 * time.Second

// observeTimeout bounds each look at one server (a few quick queries), so
// that a server cut off by a partition slows a pass by seconds, not by
// the whole of sqlTimeout, and failure detection stays prompt.
const observeTimeout = 5 * time.Second

// Roles in status.instances.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// serverView is what one running instance's mysqld said.
type serverView struct {
	status    mysql.Status
	semiSync  bool     // the primary side of semi-sync is on
	waitCount int      // how many replicas it waits for
	databases []string // only asked of the primary
	err       error
}

// observeServers asks every running instance's mysqld for its status, all
// at once. Instances not running are not asked.
func (r *ClusterReconciler) observeServers(ctx context.Context, c *spec.MySQLCluster, insts []*store.Instance) (map[int]serverView, store.Passwords, []byte) {
	if r.Servers == nil {
		return nil, nil, nil
	}
	pw, err := r.Store.EnsurePasswords(ctx, c.Metadata.Namespace, c.Metadata.Name, c.Metadata.UID, AdminUser, ReplicationUser)
	if err != nil {
		r.logger().Warn("cannot read the cluster's passwords", "cluster", c.Key(), "err", err)
		return nil, nil, nil
	}
	var ca []byte
	if anyTLS(insts) {
		// Without it the instances serving TLS are not opened (open says
		// why), rather than talked to unverified.
		if ca, err = r.TLS.Trusted(ctx, c.Metadata.Namespace, c.Metadata.Name, c.Metadata.UID); err != nil {
			r.logger().Warn("cannot read the cluster's CA", "cluster", c.Key(), "err", err)
		}
	}
	out := map[int]serverView{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, inst := range insts {
		if !r.running(inst) {
			continue
		}
		wg.Go(func() {
			v := r.lookAt(ctx, c.Spec.Flavor, inst, pw, ca)
			mu.Lock()
			out[inst.Ordinal] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, pw, ca
}

func (r *ClusterReconciler) running(inst *store.Instance) bool {
	if inst.Phase != store.InstanceLaunched {
		return false
	}
	t, ok := r.Mesos.Task(inst.TaskID)
	return ok && t.State == mesos.TASK_RUNNING
}

func (r *ClusterReconciler) lookAt(ctx context.Context, flavor string, inst *store.Instance, pw store.Passwords, ca []byte) serverView {
	srv, err := r.open(flavor, inst, pw, ca)
	if err != nil {
		return serverView{err: err}
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	v := serverView{}
	if v.status, v.err = srv.Status(ctx); v.err != nil {
		return v
	}
	if v.semiSync, v.waitCount, v.err = srv.SemiSyncPrimary(ctx); v.err != nil {
		return v
	}
	if !v.status.ReadOnly {
		v.databases, v.err = srv.Databases(ctx)
	}
	return v
}

// open connects to inst's mysqld as Mysos' admin: over TLS, verified
// against ca, when its task was launched with TLS (and then only so).
func (r *ClusterReconciler) open(flavor string, inst *store.Instance, pw store.Passwords, ca []byte) (Server, error) {
	ep := mysql.Endpoint{Host: inst.Hostname, Port: int(inst.Port), User: AdminUser, Password: pw[AdminUser]}
	if inst.TLS {
		if len(ca) == 0 {
			return nil, fmt.Errorf("%s serves TLS, but the cluster's CA is not at hand to verify it", inst.Name())
		}
		ep.CA = ca
	}
	return r.Servers.Open(ep, flavor)
}

// topologyActions: with the instances in place, the servers' roles. The
// primary is decided first and recorded in status.currentPrimary, then made
// writable; every other running instance replicates from it, read-only.
// While a failover or switchover replaces the primary, nothing runs until
// the new one is recorded; then its order is stricter (replicationActions).
func topologyActions(w world) []action {
	if w.servers == nil || w.cluster.Metadata.DeletionTimestamp != nil {
		return nil
	}
	op := w.cluster.Status.Operation
	if op != nil && before(op.Step, spec.StepConfiguring) {
		return nil
	}
	primary := primaryInstance(w)
	if primary == nil {
		if cand, why := electPrimary(w); cand != nil {
			return []action{{kind: actElectPrimary, inst: cand, why: why}}
		}
		return nil
	}
	pv, ok := w.servers[primary.Ordinal]
	if !ok || pv.err != nil {
		return nil // the primary is not running or not answering: failover's business
	}
	writable := !pv.status.ReadOnly && pv.status.Replica == nil
	if !writable && lacksReceived(w, primary) != "" {
		// Back without what a replica received (a fresh volume): neither
		// opened nor used to judge the replicas; primaryFailure fails it
		// over.
		return nil
	}
	switch {
	case writable:
		// Semi-sync first, then the replicas, then the databases: a
		// database created while semi-sync waits for replicas that are not
		// yet configured would never commit.
		out := semiSyncActions(w, primary, pv)
		out = append(out, replicaActions(w, primary, pv)...)
		return append(out, databaseActions(w, primary, pv)...)
	case op != nil:
		return promotionActions(w, primary, pv)
	}
	// No operation: the first primary, or one restarted in place (mysqld
	// boots read-only with semi-sync off, which goes on first).
	out := append(semiSyncActions(w, primary, pv), action{kind: actPromote, inst: primary, why: "the elected primary is not writable yet"})
	return append(out, replicaActions(w, primary, pv)...)
}

// promotionActions open a new primary to writes only once no write can be
// acknowledged before a replica has it: detached from its old source,
// semi-sync on, the replicas pointed at it, and writable last.
func promotionActions(w world, primary *store.Instance, pv serverView) []action {
	var out []action
	if pv.status.Replica != nil {
		out = append(out, action{kind: actDetach, inst: primary, why: "the new primary must forget its old source"})
	}
	if specReplicas(w.cluster) > 1 && !pv.semiSync {
		out = append(out, action{kind: actSemiSync, inst: primary, why: "no write may be acknowledged before a replica has it"})
	}
	out = append(out, replicaActions(w, primary, pv)...)
	return append(out, action{kind: actPromote, inst: primary, why: "the new primary opens to writes last"})
}

// replicaActions point every other running instance at the primary,
// read-only, unless its data holds transactions the primary lacks.
func replicaActions(w world, primary *store.Instance, pv serverView) []action {
	var out []action
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == primary || !ok || v.err != nil || inst.Phase != store.InstanceLaunched || inst.Ordinal >= specReplicas(w.cluster) {
			continue // not running, or surplus and draining (drainBeforeRelease)
		}
		if inst.Errant != "" {
			if !v.status.ReadOnly {
				out = append(out, action{kind: actMarkErrant, inst: inst, why: "an errant instance must not take writes: " + inst.Errant})
				continue
			}
			if asked := slices.Contains(w.cluster.Status.ReseedRequested, inst.Name()); asked || w.cluster.Spec.Failover.ReseedErrant {
				a := releaseAction(w, inst, false)
				a.why = "errant (" + inst.Errant + "); spec.failover.reseedErrant: a fresh instance is seeded from the primary"
				if asked {
					a.why = "errant (" + inst.Errant + "); re-seed requested (mysosctl reseed): a fresh instance is seeded from the primary"
				}
				out = append(out, a)
			}
			continue
		}
		replicating := replicatesFrom(v.status, primary) && v.status.Replica.IOThread != "No"
		tlsOn, caFile := replicationTLS(primary, inst, v)
		if replicating && v.status.ReadOnly && !v.semiSync && tlsMatches(v.status.Replica, tlsOn, caFile) {
			continue
		}
		if a, errant := errantAction(w, inst, pv, v); errant {
			out = append(out, a)
			continue
		}
		out = append(out, action{kind: actReplicate, inst: inst,
			why: fmt.Sprintf("must replicate from the primary %s (%s:%d) %s, read-only, without the primary side of semi-sync",
				primary.Name(), primary.Hostname, primary.Port, describeTLS(tlsOn, caFile))})
	}
	return out
}

// semiSyncActions keep the primary side of semi-sync as the spec says: on
// while the cluster has replicas, waiting for as many as are ready.
func semiSyncActions(w world, primary *store.Instance, pv serverView) []action {
	var out []action
	want := wantSemiSync(w, primary, pv)
	switch count := waitCountFor(w, primary); {
	case want != pv.semiSync:
		why := "the cluster has replicas: no write may be acknowledged before one has it"
		if !want {
			why = "spec.replicas is 1: no replica could acknowledge a write"
		}
		out = append(out, action{kind: actSemiSync, inst: primary, why: why})
	case want && count != pv.waitCount:
		out = append(out, action{kind: actSemiSync, inst: primary,
			why: fmt.Sprintf("%d replica(s) ready: the primary waits for %d acknowledgement(s), not %d", readyReplicas(w, primary), count, pv.waitCount)})
	}
	return out
}

// databaseActions create the databases spec.users name.
func databaseActions(w world, primary *store.Instance, pv serverView) []action {
	var out []action
	for _, db := range missingDatabases(w.cluster, pv.databases) {
		out = append(out, action{kind: actCreateDatabase, inst: primary, db: db, why: "spec.users grants privileges on it"})
	}
	return out
}

// wantSemiSync: once on, semi-sync stays on while the spec has replicas,
// even when every replica is gone (writes then wait: an acknowledged write
// must never exist on the primary alone). It is turned on only when a
// replica replicates, so a new cluster's first writes do not wait for
// replicas that are still starting.
func wantSemiSync(w world, primary *store.Instance, pv serverView) bool {
	if w.cluster.Spec.Replicas == nil || *w.cluster.Spec.Replicas <= 1 {
		return false
	}
	// A primary holding transactions has served: its writes must wait
	// for a replica from now on, even right after a restart in place.
	if pv.semiSync || w.cluster.Status.Operation != nil || !pv.status.GTIDExecuted.IsEmpty() {
		return true
	}
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst != primary && ok && v.err == nil && replicatesFrom(v.status, primary) && v.status.Replica.IORunning {
			return true
		}
	}
	return false
}

// semiSyncWaitCount is how many replicas must have a transaction before the
// primary acknowledges it: half of the replicas, at least one (3 members:
// 1, 5: 2, 7: 3), so that a failover can always find it on a survivor
// while a minority of replicas may lag. MariaDB waits for exactly one.
func semiSyncWaitCount(c *spec.MySQLCluster) int {
	if c.Spec.Flavor == "mariadb" || c.Spec.Replicas == nil {
		return 1
	}
	return max(1, int(*c.Spec.Replicas-1)/2)
}

// waitCountFor is the semi-sync wait count the primary should apply now:
// the spec's (semiSyncWaitCount), but never more than half of the staying
// replicas that replicate from it (at least one). So a scale-up raises it
// only once the new replicas are ready, and a scale-down lowers it before
// the surplus replicas are drained (drainBeforeRelease waits for that).
func waitCountFor(w world, primary *store.Instance) int {
	return max(1, min(semiSyncWaitCount(w.cluster), readyReplicas(w, primary)/2))
}

// readyReplicas counts the staying replicas receiving from the primary.
func readyReplicas(w world, primary *store.Instance) int {
	n := 0
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst != primary && ok && v.err == nil && inst.Ordinal < specReplicas(w.cluster) && inst.Errant == "" &&
			replicatesFrom(v.status, primary) && v.status.Replica.IORunning {
			n++
		}
	}
	return n
}

// missingDatabases are the databases spec.users name that the primary lacks.
func missingDatabases(c *spec.MySQLCluster, have []string) []string {
	var out []string
	for _, u := range c.Spec.Users {
		for _, db := range u.Databases {
			if db != "*" && !slices.Contains(have, db) && !slices.Contains(out, db) {
				out = append(out, db)
			}
		}
	}
	return out
}

// primaryInstance is the instance status.currentPrimary names, if any.
func primaryInstance(w world) *store.Instance {
	name := w.cluster.Status.CurrentPrimary
	for _, inst := range w.instances {
		if name != "" && inst.Name() == name {
			return inst
		}
	}
	return nil
}

// electPrimary picks the first primary of a cluster: among the answering
// instances, the one whose executed GTID set contains every other's (for a
// new cluster all are empty, and the lowest ordinal wins). Sets that
// diverged elect nobody.
func electPrimary(w world) (*store.Instance, string) {
	var best *store.Instance
	var bestSet mysql.GTIDSet
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if !ok || v.err != nil || inst.Phase != store.InstanceLaunched {
			continue
		}
		set := v.status.GTIDExecuted
		switch {
		case best == nil:
			best, bestSet = inst, set
		case !mysql.Comparable(bestSet, set):
			return nil, ""
		case !bestSet.Contains(set):
			best, bestSet = inst, set
		}
	}
	if best == nil {
		return nil, ""
	}
	return best, fmt.Sprintf("no primary yet; %s has every transaction any running instance has (%s)", best.Name(), orEmpty(bestSet.String()))
}

func orEmpty(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

func replicatesFrom(st mysql.Status, primary *store.Instance) bool {
	return st.Replica != nil && st.Replica.SourceHost == primary.Hostname && st.Replica.SourcePort == int(primary.Port)
}

// performTopology carries out a topology action.
func (r *ClusterReconciler) performTopology(ctx context.Context, c *spec.MySQLCluster, w world, a action) error {
	if a.kind == actElectPrimary {
		_, err := r.Store.UpdateStatus(ctx, c.Metadata.Namespace, c.Metadata.Name, c.Metadata.UID, func(st *spec.ClusterStatus) error {
			st.CurrentPrimary = a.inst.Name()
			return nil
		})
		return err
	}
	srv, err := r.open(c.Spec.Flavor, a.inst, w.passwords, w.tlsCA)
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	switch a.kind {
	case actDetach:
		return srv.ResetReplication(ctx)
	case actStopIO:
		return srv.StopReplicaIO(ctx)
	case actPromote:
		if w.servers[a.inst.Ordinal].status.Replica != nil {
			if err := srv.ResetReplication(ctx); err != nil {
				return err
			}
		}
		return srv.SetReadOnly(ctx, false)
	case actSemiSync:
		on := wantSemiSync(w, a.inst, w.servers[a.inst.Ordinal])
		return srv.EnableSemiSync(ctx, on, waitCountFor(w, a.inst), semiSyncNever)
	case actCreateDatabase:
		return srv.CreateDatabase(ctx, a.db)
	case actReplicate:
		v := w.servers[a.inst.Ordinal]
		if !v.status.ReadOnly || v.semiSync {
			// A former primary, perhaps back from a partition with
			// commits waiting for an acknowledgement: their clients are
			// disconnected (they get an error, never an OK) as it turns
			// read-only (see stopWrites).
			if err := stopWrites(ctx, srv, 0); err != nil {
				return err
			}
		}
		if v.semiSync {
			// With the primary side of semi-sync on, every replicated
			// commit would wait for acknowledgements nobody sends, and
			// the applier would stall.
			if err := srv.EnableSemiSync(ctx, false, 0, 0); err != nil {
				return err
			}
		}
		p := primaryInstance(w)
		tlsOn, caFile := replicationTLS(p, a.inst, v)
		return srv.ReplicateFrom(ctx, mysql.Source{Host: p.Hostname, Port: int(p.Port), User: ReplicationUser, Password: w.passwords[ReplicationUser],
			TLS: tlsOn, CAFile: caFile})
	}
	return fmt.Errorf("not a topology action: %s", a.kind)
}
