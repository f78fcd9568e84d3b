package reconciler

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// ClusterGetter reads a cluster's spec.
type ClusterGetter interface {
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
}

// PasswordStore hands out a cluster's generated passwords.
type PasswordStore interface {
	EnsurePasswords(ctx context.Context, ns, name, uid string, accounts ...string) (store.Passwords, error)
}

// The accounts Mysos keeps on every server.
const (
	AdminUser       = "mysos_admin"
	ReplicationUser = "mysos_repl"
)

// taskData is what inst's executor needs: for the mysql workload the
// server's identity, memory, configuration, every account with its
// password and, with spec.tls, a certificate and key issued for this
// launch (task data is shown by no Mesos state endpoint). It records in
// inst whether the task serves TLS.
func (l *Launcher) taskData(ctx context.Context, inst *store.Instance) ([]byte, error) {
	d := taskspec.Data{Workload: l.Executor.Workload}
	inst.TLS = false
	if d.Workload != taskspec.WorkloadMySQL {
		return d.Marshal()
	}
	c, err := l.clusterOf(ctx, inst.Namespace, inst.Cluster, inst.ClusterUID)
	if err != nil {
		return nil, err
	}
	accounts := []string{AdminUser, ReplicationUser}
	for _, u := range c.Spec.Users {
		accounts = append(accounts, u.Name)
	}
	pw, err := l.Passwords.EnsurePasswords(ctx, inst.Namespace, inst.Cluster, inst.ClusterUID, accounts...)
	if err != nil {
		return nil, err
	}
	replicas := int32(1)
	if c.Spec.Replicas != nil {
		replicas = *c.Spec.Replicas
	}
	d.MySQL = &taskspec.MySQL{
		Flavor: c.Spec.Flavor, Version: c.Spec.Version, ServerID: uint32(inst.Ordinal) + 1,
		Host: inst.Hostname, MemoryMiB: inst.Request.MemMiB, SemiSync: replicas > 1,
		Config: c.Spec.MySQLConfig, Users: accountsOf(c.Spec.Users, pw), Admin: AdminUser,
		Seed: donorFor(c.Status.Endpoints, fmt.Sprintf("%s:%d", inst.Hostname, inst.Port)),
	}
	if d.MySQL.Seed == nil && inst.Ordinal == 0 && restorePending(c) {
		d.MySQL.Restore = l.Backups.restoreFor(c)
	}
	if seed := d.MySQL.Seed; seed != nil {
		if seed.CA, err = l.memberCA(ctx, inst.Namespace, inst.Cluster, inst.ClusterUID, seed.Host, seed.Port); err != nil {
			return nil, err
		}
	}
	if c.Spec.TLSEnabled() {
		if d.MySQL.TLS, err = l.TLS.issue(ctx, c, inst); err != nil {
			return nil, fmt.Errorf("issue the TLS certificate of %s: %w", inst.Name(), err)
		}
		inst.TLS = true
	}
	return d.Marshal()
}

// clusterOf reads the spec a task is built from, as long as it is the
// incarnation (uid) the record belongs to.
func (l *Launcher) clusterOf(ctx context.Context, ns, name, uid string) (*spec.MySQLCluster, error) {
	if l.Clusters == nil || l.Passwords == nil {
		return nil, fmt.Errorf("the %s workload needs the cluster store", l.Executor.Workload)
	}
	c, err := l.Clusters.Get(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if c.Metadata.UID != uid {
		return nil, fmt.Errorf("cluster %s/%s was replaced", ns, name)
	}
	return c, nil
}

// donorFor picks the member a new data directory is copied from: a replica,
// so the primary's writes are not slowed, else the primary; never the
// instance itself. nil while the cluster has no writable primary, which is
// when its first members start empty.
func donorFor(e *spec.Endpoints, self string) *taskspec.Donor {
	if e == nil || e.Primary == "" {
		return nil
	}
	for _, hp := range append(slices.Clone(e.Replicas), e.Primary) {
		if hp == self {
			continue
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(port); err == nil {
			return &taskspec.Donor{Host: host, Port: p}
		}
	}
	return nil
}

// accountsOf lists Mysos' own accounts and the spec's users, one entry per
// grant.
func accountsOf(users []spec.User, pw store.Passwords) []taskspec.User {
	out := []taskspec.User{
		{Name: AdminUser, Host: "%", Password: pw[AdminUser], Privileges: []string{"ALL PRIVILEGES"}, On: "*.*", WithGrantOption: true},
		{Name: ReplicationUser, Host: "%", Password: pw[ReplicationUser], Privileges: []string{"REPLICATION SLAVE", "REPLICATION CLIENT"}, On: "*.*"},
	}
	for _, u := range users {
		for _, db := range u.Databases {
			on := "`" + strings.ReplaceAll(db, "`", "``") + "`.*"
			if db == "*" {
				on = "*.*"
			}
			out = append(out, taskspec.User{Name: u.Name, Host: u.Host, Password: pw[u.Name], Privileges: u.Privileges, On: on})
		}
	}
	return out
}
