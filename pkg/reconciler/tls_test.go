package reconciler

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

func tlsCluster(replicas int32, required bool) *spec.MySQLCluster {
	c := newCluster(replicas, 1)
	c.Spec.TLS = &spec.TLSSpec{Enabled: true, Required: required}
	return c
}

// launchTLS offers agent i to a mysql-workload launcher and returns the
// task it launched there and its data.
func launchTLS(t *testing.T, l *Launcher, i int) (mesos.TaskInfo, taskspec.Data) {
	t.Helper()
	accept, _ := l.HandleOffers(context.Background(), []mesos.Offer{offer(i)})
	for _, op := range accept[fmt.Sprintf("o%d", i)] {
		if op.Type == mesos.Offer_Operation_LAUNCH {
			task := op.Launch.TaskInfos[0]
			d, err := taskspec.Parse(task.Data)
			if err != nil {
				t.Fatal(err)
			}
			return task, d
		}
	}
	t.Fatalf("no launch on o%d: %v", i, accept)
	return mesos.TaskInfo{}, taskspec.Data{}
}

// verifyCert checks that certPEM chains to caPEM and names host.
func verifyCert(t *testing.T, certPEM, caPEM, host, cn string) *x509.Certificate {
	t.Helper()
	cert, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("the trusted bundle holds no certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("the instance certificate does not verify for %s: %v", host, err)
	}
	if cert.Subject.CommonName != cn {
		t.Fatalf("certificate CN %q; want %q", cert.Subject.CommonName, cn)
	}
	return cert
}

// TestTLSTaskDataCarriesACertificate: with spec.tls each launch carries a
// certificate for the instance's name and host, signed by the cluster's
// CA (generated once, kept in the store), the CA bundle and the key, in
// the task data only; the record says the task serves TLS.
func TestTLSTaskDataCarriesACertificate(t *testing.T) {
	g := newRig(t, tlsCluster(3, true), true)
	g.settle()
	l := newLauncher(g.store)
	l.Executor.Workload = taskspec.WorkloadMySQL
	l.Clusters, l.Passwords, l.TLS = g.store, fakePasswords{}, &MySQLTLS{Store: g.store}

	task, d := launchTLS(t, l, 1)
	tls := d.MySQL.TLS
	if tls == nil || !tls.Required || tls.Key == "" {
		t.Fatalf("task data TLS %+v; want a certificate, its key, and required", tls)
	}
	ca, ok, _ := g.store.ClusterCA(context.Background(), "default", "shop", "u1")
	if !ok || tls.CA != ca.CertPEM || g.store.casMade != 1 {
		t.Fatalf("the bundle is not the cluster's stored CA (stored %v, made %d)", ok, g.store.casMade)
	}
	cert := verifyCert(t, tls.Cert, tls.CA, "agent-1", "shop-0")
	if left := time.Until(cert.NotAfter); left < 360*24*time.Hour || left > 366*24*time.Hour {
		t.Fatalf("the certificate is valid for %s; want a year", left)
	}
	inst := g.store.instance("default/shop/0")
	if !inst.TLS {
		t.Fatal("the instance record does not say its task serves TLS")
	}
	for _, where := range []string{task.Labels.String(), task.Executor.Command.String(), task.Name, task.Executor.String()} {
		if strings.Contains(where, "PRIVATE KEY") || strings.Contains(where, "CERTIFICATE") {
			t.Fatalf("TLS material outside the task data: %s", where)
		}
	}

	// The next instance gets its own certificate from the same CA.
	_, d2 := launchTLS(t, l, 2)
	verifyCert(t, d2.MySQL.TLS.Cert, ca.CertPEM, "agent-2", "shop-1")
	if d2.MySQL.TLS.Key == tls.Key || g.store.casMade != 1 {
		t.Fatalf("second launch: same key %v, CAs made %d", d2.MySQL.TLS.Key == tls.Key, g.store.casMade)
	}
}

// TestTLSGivenCASignsAndOwnStaysTrusted: a CA given to the scheduler signs
// the certificates, and the bundle keeps trusting the cluster's own CA
// from before, so that instances launched earlier still verify.
func TestTLSGivenCASignsAndOwnStaysTrusted(t *testing.T) {
	given, err := pki.NewCA("corporate", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g := newRig(t, tlsCluster(3, false), true)
	g.settle()
	l := newLauncher(g.store)
	l.Executor.Workload = taskspec.WorkloadMySQL
	l.Clusters, l.Passwords, l.TLS = g.store, fakePasswords{}, &MySQLTLS{Store: g.store, Given: given}

	_, d := launchTLS(t, l, 1)
	cert := verifyCert(t, d.MySQL.TLS.Cert, string(given.CertPEM), "agent-1", "shop-0")
	if d.MySQL.TLS.Required || g.store.casMade != 0 {
		t.Fatalf("required %v, CAs generated %d; want neither", d.MySQL.TLS.Required, g.store.casMade)
	}
	if cert.NotAfter.After(given.Cert.NotAfter) {
		t.Fatalf("the certificate (until %s) outlives its CA (until %s)", cert.NotAfter, given.Cert.NotAfter)
	}

	own, err := (&MySQLTLS{Store: g.store}).signer(context.Background(), "default", "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	_, d2 := launchTLS(t, l, 2)
	if !strings.Contains(d2.MySQL.TLS.CA, string(given.CertPEM)) || !strings.Contains(d2.MySQL.TLS.CA, string(own.CertPEM)) {
		t.Fatal("the bundle lacks the given CA or the cluster's own")
	}
	verifyCert(t, d2.MySQL.TLS.Cert, string(given.CertPEM), "agent-2", "shop-1")
}

// TestTLSOffLaunchesPlainAndConnectsToTLSMembersWithTheCA: without
// spec.tls no certificate is made; a task that copies from a member
// serving TLS (a seed, a backup) is told the CA to verify it with.
func TestTLSOffLaunchesPlainAndConnectsToTLSMembersWithTheCA(t *testing.T) {
	c := newCluster(3, 1)
	g := newRig(t, c, true)
	g.settle()
	l := newLauncher(g.store)
	l.Executor.Workload = taskspec.WorkloadMySQL
	l.Clusters, l.Passwords, l.Jobs, l.TLS = g.store, fakePasswords{}, g.store, &MySQLTLS{Store: g.store}
	_, d := launchTLS(t, l, 1)
	if d.MySQL.TLS != nil || g.store.casMade != 0 || g.store.instance("default/shop/0").TLS {
		t.Fatalf("TLS off: task TLS %+v, CAs made %d", d.MySQL.TLS, g.store.casMade)
	}

	// shop-0 was relaunched with TLS (the spec had it then) and is the
	// primary: shop-1 seeds from it over TLS.
	ctx := context.Background()
	ca, err := (&MySQLTLS{Store: g.store}).signer(ctx, "default", "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	p := g.store.instance("default/shop/0")
	p.TLS = true
	g.store.instances[p.Key()] = p
	g.store.clusters["default/shop"].Status.Endpoints = &spec.Endpoints{Primary: fmt.Sprintf("%s:%d", p.Hostname, p.Port), Epoch: 1}
	_, d2 := launchTLS(t, l, 2)
	if s := d2.MySQL.Seed; s == nil || s.Host != p.Hostname || s.CA != string(ca.CertPEM) {
		t.Fatalf("seed %+v; want shop-0 with the cluster's CA", s)
	}
	if d2.MySQL.TLS != nil {
		t.Fatal("a task launched with TLS off got a certificate")
	}

	j := store.NewBackupJob(g.cluster(), spec.BackupOnDemand, t0, "file:///backups")
	j.Instance, j.AgentID, j.SourceHost, j.SourcePort = "shop-0", p.AgentID, p.Hostname, int(p.Port)
	if err := g.store.PutBackupJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	data, err := l.backupData(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	bd, err := taskspec.Parse(data)
	if err != nil || bd.Backup.Source.CA != string(ca.CertPEM) {
		t.Fatalf("backup source %+v (%v); want the cluster's CA", bd.Backup.Source, err)
	}
}

// TestTLSWithoutCAStoreRefusesToLaunch: a TLS cluster is not launched in
// plaintext when the launcher cannot issue certificates.
func TestTLSWithoutCAStoreRefusesToLaunch(t *testing.T) {
	g := newRig(t, tlsCluster(1, true), true)
	g.settle()
	l := newLauncher(g.store)
	l.Executor.Workload = taskspec.WorkloadMySQL
	l.Clusters, l.Passwords = g.store, fakePasswords{}
	accept, _ := l.HandleOffers(context.Background(), []mesos.Offer{offer(1)})
	if len(accept) != 0 || g.store.instance("default/shop/0").Phase != store.InstancePending {
		t.Fatalf("launched without a CA: %v", accept)
	}
}

// newTLSRig is a running cluster on fake servers, launched as the launcher
// would with spec.tls: every record says TLS, every server serves it with
// its own CA file and requires it when the spec does.
func newTLSRig(t *testing.T, replicas int32, required bool) (*rig, *fakeMySQL) {
	t.Helper()
	g := newRig(t, tlsCluster(replicas, required), true)
	db := newFakeMySQL()
	g.r.Servers, g.r.TLS = db, &MySQLTLS{Store: g.store}
	if _, err := g.r.TLS.signer(context.Background(), "default", "shop", "u1"); err != nil {
		t.Fatal(err)
	}
	g.settle()
	g.launchAll()
	for i := range int(replicas) {
		relaunchedWithTLS(g, db, i, required)
	}
	return g, db
}

// relaunchedWithTLS: ordinal's task now serves TLS (its record says so,
// its server has a CA file in its own run directory).
func relaunchedWithTLS(g *rig, db *fakeMySQL, ordinal int, required bool) {
	inst := g.store.instance(fmt.Sprintf("default/shop/%d", ordinal))
	inst.TLS = true
	s := db.server(addr(ordinal))
	db.mu.Lock()
	s.tlsCA, s.tlsRequired = fmt.Sprintf("/tmp/mysos-%d/ca.pem", ordinal), required
	db.mu.Unlock()
}

// TestReplicationOverTLS: the reconciler reaches every server over TLS
// only, and points each replica at the primary with TLS, verified against
// the replica's own CA file.
func TestReplicationOverTLS(t *testing.T) {
	g, db := newTLSRig(t, 3, true)
	g.converge(db)
	st := g.cluster().Status
	if st.CurrentPrimary != "shop-0" || st.Phase != spec.PhaseRunning {
		t.Fatalf("status %+v; want Running with primary shop-0", st)
	}
	for i := 1; i < 3; i++ {
		s := db.server(addr(i))
		if s.source != addr(0) || s.io != "Yes" || !s.srcTLS || s.srcCAFile != fmt.Sprintf("/tmp/mysos-%d/ca.pem", i) {
			t.Fatalf("shop-%d replicates from %s (io %s) with TLS %v, CA %q; want shop-0 over TLS verified with its own CA file",
				i, s.source, s.io, s.srcTLS, s.srcCAFile)
		}
	}
	for i := range 3 {
		if s := db.server(addr(i)); s.opens == 0 || s.tlsOpens != s.opens {
			t.Fatalf("shop-%d: %d of %d connections used TLS; want all", i, s.tlsOpens, s.opens)
		}
	}
	if !readyIsTrue(g) {
		t.Fatalf("Ready %+v", g.cluster().Status.FindCondition(spec.ConditionReady))
	}
}

// TestTurningTLSOnReachesEachInstanceAtItsLaunch: a cluster running
// without TLS keeps being reached in plaintext; as its instances are
// relaunched with TLS the replicas follow: encrypted towards a primary
// serving TLS, and verified once they serve TLS themselves.
func TestTurningTLSOnReachesEachInstanceAtItsLaunch(t *testing.T) {
	g, db := newFailoverRig(t)
	g.r.TLS = &MySQLTLS{Store: g.store}
	if _, err := g.r.TLS.signer(context.Background(), "default", "shop", "u1"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if s := db.server(addr(i)); s.tlsOpens != 0 || s.srcTLS {
			t.Fatalf("shop-%d reached with TLS before any instance serves it", i)
		}
	}
	c := g.cluster()
	c.Spec.TLS = &spec.TLSSpec{Enabled: true}
	c.Metadata.Generation++

	// The primary comes back from a relaunch serving TLS.
	relaunchedWithTLS(g, db, 0, false)
	g.converge(db)
	for i := 1; i < 3; i++ {
		if s := db.server(addr(i)); !s.srcTLS || s.srcCAFile != "" || s.io != "Yes" {
			t.Fatalf("shop-%d: TLS %v, CA %q, io %s; want encrypted (its own task has no CA file yet)", i, s.srcTLS, s.srcCAFile, s.io)
		}
	}
	// A replica relaunched with TLS verifies the primary from then on.
	relaunchedWithTLS(g, db, 1, false)
	g.converge(db)
	if s := db.server(addr(1)); !s.srcTLS || s.srcCAFile != "/tmp/mysos-1/ca.pem" {
		t.Fatalf("shop-1: TLS %v, CA %q; want verified with its CA file", s.srcTLS, s.srcCAFile)
	}
	if s := db.server(addr(2)); !s.srcTLS || s.srcCAFile != "" {
		t.Fatalf("shop-2: TLS %v, CA %q; want still unverified", s.srcTLS, s.srcCAFile)
	}
	if !readyIsTrue(g) {
		t.Fatalf("Ready %+v", g.cluster().Status.FindCondition(spec.ConditionReady))
	}

	// Off again: the primary relaunched without TLS; the replicas drop it.
	c.Spec.TLS = nil
	c.Metadata.Generation++
	p := g.store.instance("default/shop/0")
	p.TLS = false
	db.mu.Lock()
	db.servers[addr(0)].tlsCA = ""
	db.mu.Unlock()
	g.converge(db)
	for i := 1; i < 3; i++ {
		if s := db.server(addr(i)); s.srcTLS || s.io != "Yes" {
			t.Fatalf("shop-%d: TLS %v, io %s; want plaintext towards a primary without TLS", i, s.srcTLS, s.io)
		}
	}
}

// TestTLSInstanceWithoutCAIsNotOpenedInPlaintext: when the cluster's CA
// cannot be had, an instance serving TLS counts as not answering; nothing
// talks to it unverified.
func TestTLSInstanceWithoutCAIsNotOpenedInPlaintext(t *testing.T) {
	g, db := newTLSRig(t, 1, false)
	g.r.TLS = nil
	g.settle()
	if s := db.server(addr(0)); s.opens != 0 {
		t.Fatalf("the server was opened %d times without its CA", s.opens)
	}
	if in := g.cluster().Status.Instances; len(in) != 1 || slices.Contains([]string{"primary", "replica"}, in[0].Role) {
		t.Fatalf("instances %+v; want shop-0 without a role", in)
	}
}

func readyIsTrue(g *rig) bool {
	r := g.cluster().Status.FindCondition(spec.ConditionReady)
	return r != nil && r.Status == spec.ConditionTrue
}
