// Package taskspec is the contract between the scheduler and mysos-executor:
// the JSON that a task's data carries. Mesos shows task data in none of its
// state endpoints, which is why credentials travel here and never in labels,
// the environment or a command line.
package taskspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Workload kinds.
const (
	// WorkloadHold keeps the task's volume and does nothing else; the
	// reconciler's tests run it.
	WorkloadHold = "hold"
	// WorkloadMySQL runs one mysqld.
	WorkloadMySQL = "mysql"
	// WorkloadBackup takes one full backup of a cluster member and ends.
	WorkloadBackup = "backup"
	// WorkloadArchiver ships a cluster's binary logs to a backup target
	// until it is killed.
	WorkloadArchiver = "binlog-archiver"
)

// Data is a task's data.
type Data struct {
	Workload string    `json:"workload"`
	MySQL    *MySQL    `json:"mysql,omitempty"`
	Backup   *Backup   `json:"backup,omitempty"`
	Archiver *Archiver `json:"archiver,omitempty"`
}

// MySQL is what the executor needs to run one mysqld.
type MySQL struct {
	Flavor  string `json:"flavor"`
	Version string `json:"version,omitempty"`
	// ServerID is unique within the cluster.
	ServerID uint32 `json:"serverID"`
	// Host is the agent's hostname as Mesos reports it; mysqld binds to it
	// when it is an IP address, to every address otherwise.
	Host      string            `json:"host"`
	MemoryMiB float64           `json:"memoryMiB"`
	SemiSync  bool              `json:"semiSync,omitempty"`
	Config    map[string]string `json:"config,omitempty"`
	// Users are created (or their passwords reset) at every start.
	Users []User `json:"users"`
	// Admin names the user of Users the executor connects as.
	Admin string `json:"admin"`
	// Seed, when set, is the member a new data directory is copied from:
	// the cluster has data. An existing data directory ignores it.
	Seed *Donor `json:"seed,omitempty"`
	// Restore, when set (and Seed is not), fills a new data directory from
	// a backup: the first member of a cluster created with spec.restore.
	// An existing data directory ignores it.
	Restore *Restore `json:"restore,omitempty"`
	// TLS, when set, is the server's TLS (spec.tls).
	TLS *TLS `json:"tls,omitempty"`
}

// TLS is what a mysqld serves TLS with, PEM: the CA bundle it trusts
// (clients verify the servers with the same bundle, and a replica its
// source), its certificate, issued for this task, and the certificate's
// key. The executor writes them into its run directory, mode 0600.
type TLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// Required refuses clients without TLS (require_secure_transport).
	Required bool `json:"required,omitempty"`
}

// Target names a backup target and how to reach it.
type Target struct {
	// URL is hdfs://namenode:port/path or file:///path.
	URL string `json:"url"`
	// HadoopUser is the user HDFS sees; empty means the default.
	HadoopUser string `json:"hadoopUser,omitempty"`
}

// BackupRef names one full backup in a target: the backup of cluster
// Namespace/Cluster with id ID (see pkg/backup for the layout).
type BackupRef struct {
	Target    Target `json:"target"`
	Namespace string `json:"namespace"`
	Cluster   string `json:"cluster"`
	ID        string `json:"id"`
}

// Restore is a backup to start a new data directory from, and how far to
// replay the archived binary logs after it: to StopTime (transactions
// committed before it), to StopGTID (up to and including it), or, with
// Replay set and neither given, to the end of the archive. Without Replay
// the backup is restored as it was taken.
type Restore struct {
	Backup   BackupRef  `json:"backup"`
	Replay   bool       `json:"replay,omitempty"`
	StopTime *time.Time `json:"stopTime,omitempty"`
	StopGTID string     `json:"stopGTID,omitempty"`
}

// Archiver is what the binlog archiver needs: the member to stream from
// (a replica when there is one: its binary log holds only transactions a
// failover keeps), how to log in, and where the archive goes
// (<namespace>/<cluster>/binlog/ in Target, see pkg/backup).
type Archiver struct {
	Target     Target `json:"target"`
	Namespace  string `json:"namespace"`
	Cluster    string `json:"cluster"`
	ClusterUID string `json:"clusterUID"`
	Flavor     string `json:"flavor"`
	// Instance is the member streamed from (e.g. shop-1), for messages.
	Instance string `json:"instance"`
	Source   Donor  `json:"source"`
	// User and Password log in to Source (an account with REPLICATION
	// SLAVE); ServerID is the replica id the archiver presents, unique in
	// the cluster.
	User     string `json:"user"`
	Password string `json:"password"`
	ServerID uint32 `json:"serverID"`
	// SegmentSeconds closes and uploads a segment at least this often
	// while transactions arrive (and at most SegmentBytes large).
	SegmentSeconds int   `json:"segmentSeconds"`
	SegmentBytes   int64 `json:"segmentBytes,omitempty"`
}

// Backup is what the backup workload needs: the member to copy, how to log
// in, and where the backup goes. Its manifest records the rest.
type Backup struct {
	BackupRef
	ClusterUID string `json:"clusterUID"`
	// Instance is the member copied (e.g. shop-1), for the manifest.
	Instance string `json:"instance"`
	Flavor   string `json:"flavor"`
	Source   Donor  `json:"source"`
	// User and Password log in to Source (Mysos' admin account).
	User     string `json:"user"`
	Password string `json:"password"`
}

// Donor is a healthy member to copy data from.
type Donor struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// CA, when set, says the member serves TLS: connect with TLS only, and
	// verify its certificate against this CA bundle (PEM) and Host.
	CA string `json:"ca,omitempty"`
}

// User is one MySQL account and one grant.
type User struct {
	Name            string   `json:"name"`
	Host            string   `json:"host"`
	Password        string   `json:"password"`
	Privileges      []string `json:"privileges"`
	On              string   `json:"on"`
	WithGrantOption bool     `json:"withGrantOption,omitempty"`
}

// Parse decodes task data, checking what the workload needs.
func Parse(b []byte) (Data, error) {
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		return Data{}, fmt.Errorf("task data is not a JSON object: %v", err)
	}
	if d.Workload == "" {
		return Data{}, errors.New(`task data names no workload (want {"workload": KIND, ...})`)
	}
	if d.Workload == WorkloadMySQL {
		if d.MySQL == nil {
			return Data{}, errors.New(`task data for the mysql workload lacks "mysql"`)
		}
		if d.MySQL.ServerID == 0 {
			return Data{}, errors.New("task data: mysql.serverID must not be 0")
		}
		if d.MySQL.AdminUser() == nil {
			return Data{}, fmt.Errorf("task data: mysql.admin %q is not among mysql.users", d.MySQL.Admin)
		}
		if t := d.MySQL.TLS; t != nil && (t.CA == "" || t.Cert == "" || t.Key == "") {
			return Data{}, errors.New("task data: mysql.tls needs ca, cert and key")
		}
	}
	if d.Workload == WorkloadArchiver {
		if a := d.Archiver; a == nil || a.Target.URL == "" || a.Cluster == "" || a.Source.Host == "" || a.Source.Port == 0 || a.ServerID == 0 {
			return Data{}, errors.New(`task data for the binlog-archiver workload needs "archiver" with target.url, cluster, source and serverID`)
		}
	}
	if d.Workload == WorkloadBackup {
		if b := d.Backup; b == nil || b.Target.URL == "" || b.ID == "" || b.Cluster == "" || b.Source.Host == "" || b.Source.Port == 0 {
			return Data{}, errors.New(`task data for the backup workload needs "backup" with target.url, id, cluster and source`)
		}
	}
	return d, nil
}

// AdminUser is the account the executor connects as, nil if missing.
func (m *MySQL) AdminUser() *User {
	for i := range m.Users {
		if m.Users[i].Name == m.Admin {
			return &m.Users[i]
		}
	}
	return nil
}

// Marshal encodes task data.
func (d Data) Marshal() ([]byte, error) { return json.Marshal(d) }
