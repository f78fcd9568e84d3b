// Package spec defines the MySQLCluster resource: its Go types, how it is
// decoded from YAML or JSON, its defaults and its validation rules.
//
// It is a leaf package: it imports nothing else from Mysos, so every other
// component (the API server, the CLI, the reconciler, the executor) can share
// one definition of what a cluster is.
package spec

import "time"

// APIVersion and Kind identify the only resource Mysos serves today.
const (
	Group      = "mysos.io"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
	Kind       = "MySQLCluster"
	// DefaultNamespace is used when metadata.namespace is empty, as in Kubernetes.
	DefaultNamespace = "default"
)

// MySQLCluster is a replicated MySQL cluster as the user describes it (spec)
// and as Mysos observes it (status).
type MySQLCluster struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   ObjectMeta    `json:"metadata"`
	Spec       ClusterSpec   `json:"spec"`
	Status     ClusterStatus `json:"status,omitempty"`
}

// ObjectMeta follows Kubernetes' metadata. Users set name, namespace, labels
// and annotations; the server owns the rest.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// UID is assigned on creation and never changes; a cluster deleted and
	// created again under the same name gets a new one.
	UID string `json:"uid,omitempty"`
	// Generation counts changes to spec; metadata-only changes keep it.
	Generation int64 `json:"generation,omitempty"`
	// ResourceVersion is an opaque token for optimistic concurrency: an update
	// carrying a stale one is refused with a conflict.
	ResourceVersion   string     `json:"resourceVersion,omitempty"`
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`
	// DeletionTimestamp is set when deletion was requested but finalizers
	// (work the scheduler must finish first, such as killing tasks) remain.
	DeletionTimestamp *time.Time `json:"deletionTimestamp,omitempty"`
	Finalizers        []string   `json:"finalizers,omitempty"`
}

// ClusterSpec is the desired state of a cluster.
type ClusterSpec struct {
	// Replicas is the number of mysqld instances, primary included.
	Replicas *int32 `json:"replicas,omitempty"`
	// Flavor selects the server software: "mariadb" or "mysql".
	Flavor string `json:"flavor,omitempty"`
	// Version is the server version the instances must run, e.g. "10.11".
	Version string `json:"version,omitempty"`
	// Resources are reserved on a Mesos agent for each instance.
	Resources Resources `json:"resources,omitempty"`
	// MySQLConfig holds my.cnf [mysqld] overrides, e.g. max_connections: "500".
	MySQLConfig map[string]string `json:"mysqlConfig,omitempty"`
	// Users are the application accounts Mysos creates and keeps in place.
	Users []User `json:"users,omitempty"`
	// Placement says where instances may run and how they are spread.
	Placement Placement `json:"placement,omitempty"`
	// Backup schedules backups to HDFS.
	Backup *BackupSpec `json:"backup,omitempty"`
	// Restore seeds a new cluster from a backup; it cannot change after creation.
	Restore *RestoreSpec `json:"restore,omitempty"`
	// Failover says how a failed primary is replaced.
	Failover FailoverSpec `json:"failover,omitempty"`
	TLS      *TLSSpec     `json:"tls,omitempty"` // MySQL TLS (tls.go); absent: off
	// Router has the schedulers started with --router-host route the
	// cluster's clients on these ports (router.go); absent: none.
	Router *RouterSpec `json:"router,omitempty"`
}

// Resources of one instance. Quantities use Kubernetes' notation: cpus "500m"
// or 2, memory and disk "512Mi", "2Gi".
type Resources struct {
	CPUs   Quantity `json:"cpus,omitempty"`
	Memory Quantity `json:"mem,omitempty"`
	Disk   Quantity `json:"disk,omitempty"`
}

// User is a MySQL account for applications.
type User struct {
	Name string `json:"name"`
	// Host is the account's host part; "%" means any host.
	Host string `json:"host,omitempty"`
	// Databases the privileges apply to; "*" means all databases.
	Databases []string `json:"databases,omitempty"`
	// Privileges granted on those databases, e.g. SELECT, INSERT or ALL.
	Privileges []string `json:"privileges,omitempty"`
	// PasswordSecret names the secret holding the password; when empty Mysos
	// generates one.
	PasswordSecret string `json:"passwordSecret,omitempty"`
}

// Placement constrains the agents instances run on.
type Placement struct {
	// SpreadKey is the agent property instances are spread over: "hostname"
	// or the name of an agent attribute such as "rack". "none" disables spreading.
	SpreadKey string `json:"spreadKey,omitempty"`
	// MaxPerDomain is how many instances may share one value of SpreadKey.
	MaxPerDomain *int32 `json:"maxPerDomain,omitempty"`
	// Attributes an agent must carry (exact match), e.g. {zone: eu-1}.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Role is the Mesos role resources are reserved for.
	Role string `json:"role,omitempty"`
}

// ClusterStatus is written by the scheduler; users never set it.
type ClusterStatus struct {
	// Phase summarises the cluster: Pending, Creating, Running, Degraded,
	// Failed or Deleting.
	Phase Phase `json:"phase,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// CurrentPrimary is the instance name of the primary, if any.
	CurrentPrimary string `json:"currentPrimary,omitempty"`
	// Endpoints is where clients connect, as published for discovery.
	Endpoints     *Endpoints       `json:"endpoints,omitempty"`
	ReadyReplicas int32            `json:"readyReplicas,omitempty"`
	Instances     []InstanceStatus `json:"instances,omitempty"`
	// Operation is the failover or switchover in progress, if any.
	Operation *Operation `json:"operation,omitempty"`
	// LastFailover is the last automatic failover (anti-flapping).
	LastFailover *FailoverRecord `json:"lastFailover,omitempty"`
	// ErrantInstances hold transactions the primary lacks; they never
	// serve and are never promoted until re-seeded.
	ErrantInstances []string `json:"errantInstances,omitempty"`
	// ReseedRequested names errant instances a user asked to re-seed
	// (mysosctl reseed); each is dropped once re-seeded.
	ReseedRequested []string `json:"reseedRequested,omitempty"`
	// Backup is the state of the cluster's backups.
	Backup *BackupStatus `json:"backup,omitempty"`
	// Restore follows spec.restore until the restored primary serves.
	Restore *RestoreStatus `json:"restore,omitempty"`
}

// Phase is a one-word summary of a cluster's state.
type Phase string

// The phases a cluster moves through.
const (
	PhasePending  Phase = "Pending"
	PhaseCreating Phase = "Creating"
	PhaseRunning  Phase = "Running"
	PhaseDegraded Phase = "Degraded"
	PhaseFailed   Phase = "Failed"
	PhaseDeleting Phase = "Deleting"
)

// Condition is a Kubernetes-style condition.
type Condition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	LastTransitionTime time.Time       `json:"lastTransitionTime"`
}

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition types Mysos reports.
const (
	// ConditionAccepted: the scheduler has seen and accepted this generation.
	ConditionAccepted = "Accepted"
	// ConditionReady: every instance runs and replicates.
	ConditionReady = "Ready"
)

// Endpoints are a cluster's client addresses. They are also published in
// etcd at <prefix>/discovery/<namespace>/<name> for routers and clients;
// Epoch grows with every change, so a stale copy never wins.
type Endpoints struct {
	// Primary is host:port of the writable primary.
	Primary string `json:"primary"`
	// Replicas are host:port of the replicas replicating from it.
	Replicas []string `json:"replicas,omitempty"`
	Epoch    int64    `json:"epoch"`
}

// InstanceStatus describes one mysqld instance as observed.
type InstanceStatus struct {
	Name string `json:"name"`
	// Phase is Mysos' view of the instance: Pending (waiting for an
	// offer), Launched (has a task) or Releasing (being removed).
	Phase   string `json:"phase,omitempty"`
	TaskID  string `json:"taskId,omitempty"`
	AgentID string `json:"agentId,omitempty"`
	Host    string `json:"host,omitempty"`
	Port    int32  `json:"port,omitempty"`
	// Volume is the id of the instance's persistent volume on its agent.
	Volume string `json:"volume,omitempty"`
	// State is the Mesos task state, e.g. TASK_RUNNING.
	State string `json:"state,omitempty"`
	// Message says why a task ended, as Mesos reported it.
	Message string `json:"message,omitempty"`
	// Role is primary or replica, as Mysos configured the server.
	Role    string `json:"role,omitempty"`
	Healthy bool   `json:"healthy,omitempty"`
	// ReadOnly, GTIDExecuted and Replication are what the server itself
	// reported at the last look.
	ReadOnly     *bool              `json:"readOnly,omitempty"`
	GTIDExecuted string             `json:"gtidExecuted,omitempty"`
	Replication  *ReplicationStatus `json:"replication,omitempty"`
}

// ReplicationStatus is a replica's view of its source.
type ReplicationStatus struct {
	// Source is the host:port it replicates from.
	Source        string `json:"source"`
	IORunning     bool   `json:"ioRunning"`
	SQLRunning    bool   `json:"sqlRunning"`
	SecondsBehind *int64 `json:"secondsBehind,omitempty"`
	LastError     string `json:"lastError,omitempty"`
}

// Key returns "namespace/name", the identity used in queues and logs.
func (c *MySQLCluster) Key() string {
	return c.Metadata.Namespace + "/" + c.Metadata.Name
}

// FindCondition returns the condition of the given type, or nil.
func (s *ClusterStatus) FindCondition(condType string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == condType {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition adds or replaces a condition, keeping LastTransitionTime when
// the status did not change, and reports whether anything changed.
func (s *ClusterStatus) SetCondition(c Condition, now time.Time) bool {
	old := s.FindCondition(c.Type)
	if old == nil {
		c.LastTransitionTime = now
		s.Conditions = append(s.Conditions, c)
		return true
	}
	if old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = now
	}
	changed := *old != c
	*old = c
	return changed
}

// CredentialsKind is the kind of a Credentials answer.
const CredentialsKind = "Credentials"

// Credentials are the passwords Mysos generated for a cluster's users, as
// the API hands them to an administrator; they are never part of a
// cluster's spec or status.
type Credentials struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Namespace  string       `json:"namespace"`
	Cluster    string       `json:"cluster"`
	Primary    string       `json:"primary,omitempty"`
	Users      []Credential `json:"users"`
	CACert     string       `json:"caCertificate,omitempty"` // PEM the servers' certificates chain to, when spec.tls.enabled
}

// Credential is one account's password.
type Credential struct {
	User     string `json:"user"`
	Password string `json:"password"`
}
