package spec

import "strings"

// Defaults are applied in exactly one place, SetDefaults, which the API
// server calls before validating and storing. The stored object therefore
// shows every value in effect, and changing a default later does not
// silently change running clusters.
const (
	DefaultReplicas = int32(3)
	DefaultFlavor   = FlavorMariaDB
	// DefaultMariaDBVersion and DefaultMySQLVersion are the current
	// long-term-support series of each flavor.
	DefaultMariaDBVersion = "10.11"
	DefaultMySQLVersion   = "8.0"

	DefaultCPUs   = Quantity("1")
	DefaultMemory = Quantity("512Mi")
	DefaultDisk   = Quantity("2Gi")

	// DefaultUserHost lets an application account connect from anywhere;
	// network policy belongs to the network, not to MySQL host patterns.
	DefaultUserHost = "%"
	// DefaultPrivilege is granted when a user lists no privileges.
	DefaultPrivilege = "ALL"

	// DefaultSpreadKey and DefaultMaxPerDomain put every instance on its own
	// agent, so that losing one machine loses one replica.
	DefaultSpreadKey    = SpreadKeyHostname
	DefaultMaxPerDomain = int32(1)
	// DefaultRole is the Mesos role Mysos reserves resources for.
	DefaultRole = "mysos"
)

// Flavors and the special spread keys.
const (
	FlavorMariaDB = "mariadb"
	FlavorMySQL   = "mysql"

	SpreadKeyHostname = "hostname"
	SpreadKeyNone     = "none"
)

// DefaultVersion returns the version used for flavor when none is given,
// or "" for an unknown flavor (Validate then reports the flavor).
func DefaultVersion(flavor string) string {
	switch flavor {
	case FlavorMariaDB:
		return DefaultMariaDBVersion
	case FlavorMySQL:
		return DefaultMySQLVersion
	}
	return ""
}

// SetDefaults fills every unset field that has a default. It is idempotent
// and never overwrites a value the user gave, including invalid ones: those
// are Validate's to report. apiVersion and kind are left alone for the same
// reason. Privileges are upper-cased and their spaces collapsed, so that
// "select" and "SELECT" are stored, compared and granted alike.
func SetDefaults(c *MySQLCluster) {
	if c == nil {
		return
	}
	if c.Metadata.Namespace == "" {
		c.Metadata.Namespace = DefaultNamespace
	}
	s := &c.Spec
	if s.Replicas == nil {
		s.Replicas = ptr(DefaultReplicas)
	}
	if s.Flavor == "" {
		s.Flavor = DefaultFlavor
	}
	if s.Version == "" {
		s.Version = DefaultVersion(s.Flavor)
	}
	setResourceDefaults(&s.Resources)
	for i := range s.Users {
		setUserDefaults(&s.Users[i])
	}
	setPlacementDefaults(&s.Placement)
	setFailoverDefaults(&s.Failover)
	if s.Backup != nil {
		setBackupDefaults(s.Backup)
	}
}

func setResourceDefaults(r *Resources) {
	if r.CPUs.IsZero() {
		r.CPUs = DefaultCPUs
	}
	if r.Memory.IsZero() {
		r.Memory = DefaultMemory
	}
	if r.Disk.IsZero() {
		r.Disk = DefaultDisk
	}
}

func setUserDefaults(u *User) {
	if u.Host == "" {
		u.Host = DefaultUserHost
	}
	if len(u.Privileges) == 0 {
		u.Privileges = []string{DefaultPrivilege}
	}
	for i, p := range u.Privileges {
		u.Privileges[i] = normalizePrivilege(p)
	}
}

// normalizePrivilege upper-cases a privilege and collapses its spaces:
// "create  view" becomes "CREATE VIEW". Only ASCII letters change case:
// privileges are ASCII keywords, and Unicode case mapping could turn an
// invalid name into a valid one.
func normalizePrivilege(p string) string {
	upper := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, p)
	return strings.Join(strings.Fields(upper), " ")
}

func setPlacementDefaults(p *Placement) {
	if p.SpreadKey == "" {
		p.SpreadKey = DefaultSpreadKey
	}
	if p.MaxPerDomain == nil {
		p.MaxPerDomain = ptr(DefaultMaxPerDomain)
	}
	if p.Role == "" {
		p.Role = DefaultRole
	}
}

func ptr[T any](v T) *T { return &v }
