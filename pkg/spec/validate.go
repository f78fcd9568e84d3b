package spec

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Validation runs after SetDefaults and reports every problem at once, each
// naming its field and saying how to fix it: a user should be able to
// correct a manifest from one answer. The limits below are not arbitrary;
// where a reason is not obvious, the message gives it.

// Limits that other components and documentation refer to.
const (
	// MaxNameLength is shorter than a DNS label's 63 because the name is
	// embedded, with suffixes, in etcd keys, Mesos task ids and paths.
	MaxNameLength = 53
	// MaxReplicas bounds one replication group; beyond it the primary
	// spends more on feeding replicas than on serving.
	MaxReplicas = 15
)

const (
	maxLabels           = 64
	maxLabelLen         = 63
	maxPrefixLen        = 253
	maxAnnotationsBytes = 256 << 10
	maxUsers            = 100
	maxHostLen          = 255
	maxAttributeLen     = 255
)

var (
	dnsLabelRE      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomainRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	qualifiedNameRE = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	versionRE       = regexp.MustCompile(`^\d+\.\d+(\.\d+)?$`)
	userNameRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)
	databaseRE      = regexp.MustCompile(`^[A-Za-z0-9_$-]{1,64}$`)
	attributeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,63}$`)
	roleSegmentRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	hostnameRE      = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	// userHostRE: the host part of a MySQL account, a name, an IPv4 or IPv6
	// address, address/netmask, or a pattern with % and _.
	userHostRE = regexp.MustCompile(`^[A-Za-z0-9._%:/-]+$`)
)

// Validate checks a defaulted cluster and returns every problem found.
func Validate(c *MySQLCluster) ErrorList {
	if c == nil {
		return ErrorList{requiredErr("(object)", "a MySQLCluster is required")}
	}
	var errs ErrorList
	errs = append(errs, validateTypeMeta(c)...)
	errs = append(errs, validateMetadata(&c.Metadata)...)
	errs = append(errs, validateSpec(&c.Spec)...)
	return errs
}

func validateTypeMeta(c *MySQLCluster) ErrorList {
	var errs ErrorList
	if e := validateConstant("apiVersion", c.APIVersion, APIVersion); e != nil {
		errs = append(errs, e)
	}
	if e := validateConstant("kind", c.Kind, Kind); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func validateConstant(path, value, want string) *FieldError {
	switch value {
	case want:
		return nil
	case "":
		return requiredErr(path, fmt.Sprintf("set %s: %s", path, want))
	}
	return notSupportedErr(path, value, []string{want})
}

// ---- metadata ----

func validateMetadata(m *ObjectMeta) ErrorList {
	var errs ErrorList
	if e := ValidateName("metadata.name", m.Name, MaxNameLength); e != nil {
		if e.Type == ErrorTypeTooLong {
			e.Detail += ": the name is part of etcd keys, Mesos task ids and paths"
		}
		errs = append(errs, e)
	}
	if e := ValidateName("metadata.namespace", m.Namespace, maxLabelLen); e != nil {
		errs = append(errs, e)
	}
	errs = append(errs, validateLabels("metadata.labels", m.Labels)...)
	errs = append(errs, validateAnnotations("metadata.annotations", m.Annotations)...)
	return errs
}

// IsDNSLabel reports whether s is an RFC 1123 label: at most 63 lowercase
// letters, digits and '-', starting and ending with a letter or digit.
// Names of this form are safe in URLs, etcd keys, hostnames and paths.
func IsDNSLabel(s string) bool {
	return len(s) <= maxLabelLen && dnsLabelRE.MatchString(s)
}

// ValidateName checks that value, found at path, is a DNS label of at most
// max characters, and returns nil or the problem.
func ValidateName(path, value string, max int) *FieldError {
	const form = "lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. \"orders-db\""
	switch {
	case value == "":
		return requiredErr(path, "set a name of "+form)
	case len(value) > max:
		return tooLongErr(path, value, fmt.Sprintf("must be at most %d characters", max))
	case !dnsLabelRE.MatchString(value):
		return invalidErr(path, value, "must consist of "+form)
	}
	return nil
}

func validateLabels(path string, labels map[string]string) ErrorList {
	var errs ErrorList
	if len(labels) > maxLabels {
		errs = append(errs, tooLongErr(path, nil, fmt.Sprintf("has %d labels; at most %d are allowed", len(labels), maxLabels)))
	}
	for _, k := range sortedMapKeys(labels) {
		if msg := labelKeyProblem(k); msg != "" {
			errs = append(errs, invalidErr(path, k, msg))
		}
		if msg := labelValueProblem(labels[k]); msg != "" {
			errs = append(errs, invalidErr(keyPath(path, k), labels[k], msg))
		}
	}
	return errs
}

func validateAnnotations(path string, annotations map[string]string) ErrorList {
	var errs ErrorList
	size := 0
	for _, k := range sortedMapKeys(annotations) {
		size += len(k) + len(annotations[k])
		if msg := labelKeyProblem(k); msg != "" {
			errs = append(errs, invalidErr(path, k, msg))
		}
	}
	if size > maxAnnotationsBytes {
		errs = append(errs, tooLongErr(path, nil,
			fmt.Sprintf("annotations take %d bytes; at most %d (256 KiB) in total are allowed", size, maxAnnotationsBytes)))
	}
	return errs
}

// labelKeyProblem applies Kubernetes' rules for label and annotation keys,
// so selectors and tooling written for Kubernetes work unchanged.
func labelKeyProblem(k string) string {
	const form = "a key is a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, " +
		"optionally after a DNS subdomain prefix and '/', e.g. \"team\" or \"example.com/team\""
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		prefix, name = "", k
	}
	switch {
	case hasPrefix && (len(prefix) > maxPrefixLen || !dnsSubdomainRE.MatchString(prefix)):
		return "the prefix must be a lowercase DNS subdomain of at most 253 characters; " + form
	case len(name) > maxLabelLen || !qualifiedNameRE.MatchString(name):
		return form
	}
	return ""
}

func labelValueProblem(v string) string {
	if v == "" || (len(v) <= maxLabelLen && qualifiedNameRE.MatchString(v)) {
		return ""
	}
	return "a label value is empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
}

// ---- spec ----

func validateSpec(s *ClusterSpec) ErrorList {
	var errs ErrorList
	errs = append(errs, validateReplicas("spec.replicas", s.Replicas)...)
	errs = append(errs, validateFlavorVersion(s)...)
	errs = append(errs, validateResources("spec.resources", &s.Resources)...)
	errs = append(errs, validateMySQLConfig("spec.mysqlConfig", s.MySQLConfig)...)
	errs = append(errs, validateUsers("spec.users", s.Users)...)
	errs = append(errs, validatePlacement("spec.placement", &s.Placement)...)
	errs = append(errs, validateFailover("spec.failover", &s.Failover)...)
	errs = append(errs, validateTLS(s)...)
	errs = append(errs, validateRouter("spec.router", s.Router)...)
	if s.Backup != nil {
		errs = append(errs, validateBackup("spec.backup", s.Backup)...)
	}
	if s.Restore != nil {
		errs = append(errs, validateRestore("spec.restore", s.Restore)...)
	}
	return errs
}

func validateReplicas(path string, r *int32) ErrorList {
	switch {
	case r == nil:
		return ErrorList{requiredErr(path, "set the number of instances, primary included, e.g. 3")}
	case *r < 1:
		return ErrorList{invalidErr(path, *r, "must be at least 1: scaling down to 0 is not supported; delete the cluster instead")}
	case *r > MaxReplicas:
		return ErrorList{invalidErr(path, *r, fmt.Sprintf(
			"must be at most %d: one replication group cannot usefully feed more replicas; split the data across clusters", MaxReplicas))}
	}
	return nil
}

func validateFlavorVersion(s *ClusterSpec) ErrorList {
	var errs ErrorList
	switch s.Flavor {
	case FlavorMariaDB, FlavorMySQL:
	case "":
		errs = append(errs, requiredErr("spec.flavor", `set "mariadb" or "mysql"`))
	default:
		errs = append(errs, notSupportedErr("spec.flavor", s.Flavor, []string{FlavorMariaDB, FlavorMySQL}))
	}
	switch {
	case s.Version == "":
		errs = append(errs, requiredErr("spec.version", `set the server version, e.g. "10.11"`))
	case !versionRE.MatchString(s.Version):
		errs = append(errs, invalidErr("spec.version", s.Version,
			`must be MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. "10.11" (quote it in YAML, where 10.10 is the number 10.1)`))
	}
	return errs
}

// ---- resources ----

// quantityBounds is the accepted range of one resource and, where it is not
// obvious, why the lower bound is what it is (": reason", appended as is).
type quantityBounds struct {
	min, max Quantity
	why      string
	example  Quantity
	bytes    bool // memory or disk, where "m" (milli) is a likely slip for "Mi"
}

var (
	cpuBounds  = quantityBounds{min: "10m", max: "1024", example: "500m", why: ": the Mesos allocator offers no less than 0.01 CPUs"}
	memBounds  = quantityBounds{min: "128Mi", max: "16Ti", example: "512Mi", bytes: true, why: ": MariaDB alone uses 55-100 MiB when idle"}
	diskBounds = quantityBounds{min: "256Mi", max: "1Pi", example: "2Gi", bytes: true, why: ": a data directory with its redo and binary logs needs that much"}
)

func validateResources(path string, r *Resources) ErrorList {
	var errs ErrorList
	errs = append(errs, validateQuantity(childPath(path, "cpus"), r.CPUs, cpuBounds)...)
	errs = append(errs, validateQuantity(childPath(path, "mem"), r.Memory, memBounds)...)
	errs = append(errs, validateQuantity(childPath(path, "disk"), r.Disk, diskBounds)...)
	return errs
}

func validateQuantity(path string, q Quantity, b quantityBounds) ErrorList {
	if q.IsZero() {
		return ErrorList{requiredErr(path, fmt.Sprintf("set an amount, e.g. %s", b.example))}
	}
	v, err := q.Parse()
	if err != nil {
		var qe *QuantityError
		errors.As(err, &qe)
		return ErrorList{invalidErr(path, q, qe.Reason)}
	}
	lo, _ := b.min.Parse()
	hi, _ := b.max.Parse()
	switch {
	case v.Cmp(lo) < 0:
		return ErrorList{invalidErr(path, q, "must be at least "+string(b.min)+b.why+milliHint(q, b))}
	case v.Cmp(hi) > 0:
		return ErrorList{invalidErr(path, q, fmt.Sprintf("must be at most %s", b.max))}
	}
	return nil
}

// milliHint catches "mem: 512m", which means 0.512 bytes.
func milliHint(q Quantity, b quantityBounds) string {
	if b.bytes && strings.HasSuffix(string(q), "m") {
		return `; "m" means thousandths, write "Mi" for mebibytes`
	}
	return ""
}

// ---- users ----

// reservedUsers are the server's own accounts; "mysos_*" is Mysos's
// (administration, replication, later monitoring and backup). "mysos"
// itself stays free: the original Mysos' own test created it.
var reservedUsers = []string{"root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"}

// privileges Mysos grants. GRANT OPTION, SUPER, FILE, SHUTDOWN and the
// like are absent: they would let an application undo Mysos's management.
var privileges = []string{
	"ALL", "ALL PRIVILEGES", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
	"CREATE VIEW", "SHOW VIEW", "TRIGGER", "EXECUTE", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT",
	"LOCK TABLES", "CREATE TEMPORARY TABLES", "REFERENCES", "PROCESS", "RELOAD", "REPLICATION CLIENT",
	"REPLICATION SLAVE", "SHOW DATABASES",
}

// globalPrivileges exist only server-wide: MySQL refuses `GRANT PROCESS ON
// db.*`, so they need databases: ["*"].
var globalPrivileges = []string{"PROCESS", "RELOAD", "REPLICATION CLIENT", "REPLICATION SLAVE", "SHOW DATABASES"}

func validateUsers(path string, users []User) ErrorList {
	var errs ErrorList
	if len(users) > maxUsers {
		errs = append(errs, tooLongErr(path, nil, fmt.Sprintf("has %d users; at most %d are allowed", len(users), maxUsers)))
	}
	seen := map[[2]string]int{}
	for i := range users {
		u := &users[i]
		p := indexPath(path, i)
		errs = append(errs, validateUser(p, u)...)
		account := [2]string{u.Name, strings.ToLower(u.Host)} // MySQL compares host names case-insensitively
		if first, dup := seen[account]; dup {
			errs = append(errs, invalidErr(childPath(p, "name"), u.Name, fmt.Sprintf(
				"%s@%s is already defined by %s: each name and host pair must be unique", quoteShort(u.Name), quoteShort(u.Host), indexPath(path, first))))
		} else {
			seen[account] = i
		}
	}
	return errs
}

func validateUser(path string, u *User) ErrorList {
	var errs ErrorList
	if e := validateUserName(childPath(path, "name"), u.Name); e != nil {
		errs = append(errs, e)
	}
	if e := validateUserHost(childPath(path, "host"), u.Host); e != nil {
		errs = append(errs, e)
	}
	errs = append(errs, validateDatabases(childPath(path, "databases"), u.Databases)...)
	errs = append(errs, validatePrivileges(childPath(path, "privileges"), u.Privileges, u.Databases)...)
	if u.PasswordSecret != "" && !IsDNSLabel(u.PasswordSecret) {
		errs = append(errs, invalidErr(childPath(path, "passwordSecret"), u.PasswordSecret,
			"must name a secret: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit; leave it empty to have Mysos generate a password"))
	}
	return errs
}

func validateUserName(path, name string) *FieldError {
	switch {
	case name == "":
		return requiredErr(path, "set the account name, e.g. app")
	case !userNameRE.MatchString(name):
		return invalidErr(path, name, "must be 1 to 32 letters, digits, '_', '.' or '-' (MySQL 8's limit), starting with a letter, digit or '_'")
	case slices.Contains(reservedUsers, strings.ToLower(name)):
		return forbiddenErr(path, name, "is one of the server's own accounts; choose another name")
	case strings.HasPrefix(strings.ToLower(name), "mysos_"):
		return forbiddenErr(path, name, "names starting with \"mysos_\" are reserved for Mysos's own accounts; choose another name")
	}
	return nil
}

func validateUserHost(path, host string) *FieldError {
	switch {
	case host == "":
		return requiredErr(path, `set the host part, e.g. "%" for any host`)
	case len(host) > maxHostLen:
		return tooLongErr(path, host, fmt.Sprintf("must be at most %d characters", maxHostLen))
	case !userHostRE.MatchString(host):
		return invalidErr(path, host, `must be a host name, IP address, netmask or pattern of letters, digits, '.', '-', ':', '/', '%' and '_', `+
			`without quotes, backslashes or spaces, e.g. "%" or "10.0.%"`)
	}
	return nil
}

func validateDatabases(path string, dbs []string) ErrorList {
	if len(dbs) == 0 {
		return ErrorList{requiredErr(path, `list the databases the privileges apply to, or ["*"] for all`)}
	}
	var errs ErrorList
	for j, db := range dbs {
		if db != "*" && !databaseRE.MatchString(db) {
			errs = append(errs, invalidErr(indexPath(path, j), db, `must be "*" or a database name of 1 to 64 letters, digits, '_', '$' or '-'`))
		}
	}
	return errs
}

func validatePrivileges(path string, privs, dbs []string) ErrorList {
	var errs ErrorList
	allDatabases := len(dbs) > 0 && !slices.ContainsFunc(dbs, func(db string) bool { return db != "*" })
	for j, p := range privs {
		norm := normalizePrivilege(p)
		switch {
		case !slices.Contains(privileges, norm):
			errs = append(errs, notSupportedErr(indexPath(path, j), p, privileges))
		case slices.Contains(globalPrivileges, norm) && !allDatabases:
			errs = append(errs, invalidErr(indexPath(path, j), p,
				`is a server-wide privilege: MySQL grants it only on all databases, so set databases: ["*"] or move it to a separate user`))
		}
	}
	return errs
}

// ---- placement ----

func validatePlacement(path string, p *Placement) ErrorList {
	var errs ErrorList
	if e := validateSpreadKey(childPath(path, "spreadKey"), p.SpreadKey); e != nil {
		errs = append(errs, e)
	}
	switch mp := p.MaxPerDomain; {
	case mp == nil:
		errs = append(errs, requiredErr(childPath(path, "maxPerDomain"), "set how many instances may share one spread domain, e.g. 1"))
	case *mp < 1:
		errs = append(errs, invalidErr(childPath(path, "maxPerDomain"), *mp, "must be at least 1; to stop spreading set spreadKey: none"))
	}
	errs = append(errs, validateAttributes(childPath(path, "attributes"), p.Attributes)...)
	if e := validateRole(childPath(path, "role"), p.Role); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func validateSpreadKey(path, k string) *FieldError {
	switch {
	case k == "":
		return requiredErr(path, `set "hostname", "none" or an agent attribute name such as "rack"`)
	case k == SpreadKeyHostname || k == SpreadKeyNone || attributeNameRE.MatchString(k):
		return nil
	}
	return invalidErr(path, k, `must be "hostname", "none" or an agent attribute name of 1 to 63 letters, digits, '_', '.' or '-', such as "rack"`)
}

// validateAttributes applies Mesos' attribute syntax, in which ';' separates
// attributes and ':' separates name from value.
func validateAttributes(path string, attrs map[string]string) ErrorList {
	var errs ErrorList
	for _, k := range sortedMapKeys(attrs) {
		if msg := attributeProblem(k); msg != "" {
			errs = append(errs, invalidErr(path, k, "attribute names "+msg))
		}
		if msg := attributeProblem(attrs[k]); msg != "" {
			errs = append(errs, invalidErr(keyPath(path, k), attrs[k], "attribute values "+msg))
		}
	}
	return errs
}

func attributeProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxAttributeLen:
		return fmt.Sprintf("must be at most %d characters", maxAttributeLen)
	case strings.ContainsAny(s, ";:"):
		return "must not contain ';' or ':', which separate attributes in Mesos"
	}
	return ""
}

// validateRole applies Mesos' role name rules.
func validateRole(path, role string) *FieldError {
	const form = `a Mesos role is one or more '/'-separated names of letters, digits, '_', '.' or '-', ` +
		`each starting with a letter, digit or '_', e.g. "mysos" or "dba/mysos"`
	switch {
	case role == "":
		return requiredErr(path, `set the Mesos role to reserve resources for, e.g. "mysos"`)
	case role == "*":
		return invalidErr(path, role, `"*" is the unreserved role, whose resources any framework may take; use a named role such as "mysos"`)
	}
	for seg := range strings.SplitSeq(role, "/") {
		if !roleSegmentRE.MatchString(seg) {
			return invalidErr(path, role, form)
		}
	}
	return nil
}

// ---- update ----

// ValidateUpdate checks a change from old to new, both defaulted: new must
// be valid, and fields that cannot change on a running cluster must not.
func ValidateUpdate(oldC, newC *MySQLCluster) ErrorList {
	errs := Validate(newC)
	if oldC == nil || newC == nil {
		return errs
	}
	o, n := &oldC.Metadata, &newC.Metadata
	errs = appendImmutable(errs, "metadata.name", o.Name, n.Name, "a cluster cannot be renamed")
	errs = appendImmutable(errs, "metadata.namespace", o.Namespace, n.Namespace, "a cluster cannot move to another namespace")
	os, ns := &oldC.Spec, &newC.Spec
	errs = appendImmutable(errs, "spec.flavor", os.Flavor, ns.Flavor,
		"switching between MariaDB and MySQL needs a new cluster and a data migration")
	errs = appendImmutable(errs, "spec.version", os.Version, ns.Version,
		"in-place upgrades are not supported yet; create a new cluster restored from a backup")
	errs = appendImmutable(errs, "spec.placement.role", os.Placement.Role, ns.Placement.Role,
		"resources and volumes are reserved for the role the cluster was created with")
	if e := validateDiskChange(os.Resources.Disk, ns.Resources.Disk); e != nil {
		errs = append(errs, e)
	}
	if !sameRestore(os.Restore, ns.Restore) {
		errs = append(errs, invalidErr("spec.restore", nil,
			"field is immutable: a restore only happens when the cluster is created; put the section back as it was"))
	}
	return errs
}

func appendImmutable(errs ErrorList, path, oldV, newV, why string) ErrorList {
	if oldV == newV {
		return errs
	}
	return append(errs, invalidErr(path, newV, fmt.Sprintf("field is immutable (was %q): %s", oldV, why)))
}

// validateDiskChange lets the data volume grow but not shrink: persistent
// volumes cannot shrink. Unparsable values are Validate's to report.
func validateDiskChange(oldQ, newQ Quantity) *FieldError {
	c, err := newQ.Cmp(oldQ)
	if err != nil || c >= 0 {
		return nil
	}
	return invalidErr("spec.resources.disk", newQ, fmt.Sprintf(
		"may grow but not shrink (it was %s): persistent volumes cannot shrink", oldQ))
}

func sortedMapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
