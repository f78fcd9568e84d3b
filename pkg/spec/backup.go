package spec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// BackupSpec says when and where a cluster's full backups are taken and how
// long they are kept. Every field is optional: an empty backup section
// means on-demand backups (mysosctl backup create) to the scheduler's
// default destination, a week of them kept.
type BackupSpec struct {
	// Schedule is a cron expression (five fields, or @daily and friends);
	// empty means backups are only taken on demand.
	Schedule string `json:"schedule,omitempty"`
	// Destination is where backups go: hdfs://namenode:port/path, or
	// file:///path on a file system every agent and the scheduler share.
	// Empty means the scheduler's --backup-destination.
	Destination string `json:"destination,omitempty"`
	// Retention says which full backups are kept.
	Retention BackupRetention `json:"retention,omitempty"`
	// BinlogArchiving ships binary logs for point-in-time recovery.
	BinlogArchiving bool `json:"binlogArchiving,omitempty"`
}

// BackupRetention: a full backup is deleted once Keep newer ones exist, or
// once it is older than MaxAge (when set), whichever comes first; the newest
// full backup is never deleted by age.
type BackupRetention struct {
	Keep   *int32   `json:"keep,omitempty"`
	MaxAge Duration `json:"maxAge,omitempty"`
}

// RestoreSpec fills a new cluster from a backup when it is created; it
// cannot change afterwards.
type RestoreSpec struct {
	// From names the backup: <cluster>/<backup-id>, a backup of a cluster
	// of the same namespace (mysosctl backup list CLUSTER shows the ids).
	From string `json:"from"`
	// Destination is where that backup is kept; empty means this cluster's
	// spec.backup.destination, else the scheduler's default.
	Destination string `json:"destination,omitempty"`
	// PointInTime replays the source cluster's archived binary logs after
	// the backup: up to an RFC 3339 time (transactions committed before
	// it), up to and including a GTID, or "latest" (the end of the
	// archive). Empty restores the backup as it was taken.
	PointInTime string `json:"pointInTime,omitempty"`
}

// Backup defaults and bounds.
const (
	// DefaultBackupKeep is a week of daily backups.
	DefaultBackupKeep = int32(7)
	maxBackupKeep     = 1000
	maxBackupAge      = 10 * 365 * 24 * time.Hour
)

// BackupIDPattern is what a backup id looks like: its start time in UTC,
// e.g. 20261126T031500Z.
var BackupIDPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)

func setBackupDefaults(b *BackupSpec) {
	if b.Retention.Keep == nil {
		b.Retention.Keep = ptr(DefaultBackupKeep)
	}
}

// SplitRestoreFrom splits spec.restore.from into cluster and backup id.
func SplitRestoreFrom(from string) (cluster, id string, ok bool) {
	cluster, id, ok = strings.Cut(from, "/")
	return cluster, id, ok && cluster != "" && id != ""
}

func validateBackup(path string, b *BackupSpec) ErrorList {
	var errs ErrorList
	if b.Schedule != "" {
		if msg := cronProblem(b.Schedule); msg != "" {
			errs = append(errs, invalidErr(childPath(path, "schedule"), b.Schedule, msg))
		}
	}
	if b.Destination != "" {
		if msg := destinationProblem(b.Destination); msg != "" {
			errs = append(errs, invalidErr(childPath(path, "destination"), b.Destination, msg))
		}
	}
	r := childPath(path, "retention")
	if k := b.Retention.Keep; k != nil && (*k < 1 || *k > maxBackupKeep) {
		errs = append(errs, invalidErr(childPath(r, "keep"), *k, fmt.Sprintf("must be between 1 and %d", maxBackupKeep)))
	}
	if v, err := b.Retention.MaxAge.Value(); err != nil {
		errs = append(errs, invalidErr(childPath(r, "maxAge"), string(b.Retention.MaxAge), err.Error()))
	} else if v < 0 || v > 0 && v < time.Hour || v > maxBackupAge {
		errs = append(errs, invalidErr(childPath(r, "maxAge"), string(b.Retention.MaxAge),
			"must be between 1h and 87600h (ten years), e.g. 720h for 30 days"))
	}
	return errs
}

func validateRestore(path string, r *RestoreSpec) ErrorList {
	var errs ErrorList
	if r.From == "" {
		errs = append(errs, requiredErr(childPath(path, "from"), "name the backup as <cluster>/<backup-id>; mysosctl backup list CLUSTER shows them"))
	} else if cluster, id, ok := SplitRestoreFrom(r.From); !ok || ValidateName("", cluster, MaxNameLength) != nil || !BackupIDPattern.MatchString(id) {
		errs = append(errs, invalidErr(childPath(path, "from"), r.From,
			"must be <cluster>/<backup-id> with an id such as 20261126T031500Z; mysosctl backup list CLUSTER shows them"))
	}
	if r.Destination != "" {
		if msg := destinationProblem(r.Destination); msg != "" {
			errs = append(errs, invalidErr(childPath(path, "destination"), r.Destination, msg))
		}
	}
	if _, _, err := ParsePointInTime(r.PointInTime); err != nil {
		errs = append(errs, invalidErr(childPath(path, "pointInTime"), r.PointInTime, err.Error()))
	}
	return errs
}

// PointInTimeLatest restores to the end of the archive.
const PointInTimeLatest = "latest"

var gtidRE = regexp.MustCompile(`^[0-9]+-[0-9]+-[0-9]+$`)

// ParsePointInTime reads spec.restore.pointInTime: a time, one GTID,
// "latest" or empty (no replay: both results zero).
func ParsePointInTime(s string) (at *time.Time, gtid string, err error) {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return nil, "", fmt.Errorf("a date alone is ambiguous (it reads as a GTID too): give a time such as %sT00:00:00Z", s)
	}
	switch {
	case s == "" || s == PointInTimeLatest:
		return nil, "", nil
	case gtidRE.MatchString(s):
		if msg := gtidRangeProblem(s); msg != "" {
			return nil, "", errors.New(msg)
		}
		return nil, s, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, "", fmt.Errorf(`want an RFC 3339 time such as 2026-11-26T04:05:00Z, one GTID such as 0-1-42, or "latest"`)
	}
	t = t.UTC()
	return &t, "", nil
}

// gtidRangeProblem checks the numbers of a DOMAIN-SERVER-SEQUENCE GTID
// against what the server stores: 32-bit domain and server ids, a 64-bit
// sequence number.
func gtidRangeProblem(s string) string {
	parts := strings.Split(s, "-")
	if _, err := strconv.ParseUint(parts[0], 10, 32); err != nil {
		return "the GTID's domain id must be at most 4294967295"
	}
	if _, err := strconv.ParseUint(parts[1], 10, 32); err != nil {
		return "the GTID's server id must be at most 4294967295"
	}
	if _, err := strconv.ParseUint(parts[2], 10, 64); err != nil {
		return "the GTID's sequence number must be at most 18446744073709551615"
	}
	return ""
}

func sameRestore(a, b *RestoreSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

const cronForms = `use five fields (minute hour day-of-month month day-of-week) such as "0 3 * * *", ` +
	`or @hourly, @daily, @weekly, @monthly or "@every 6h"`

// cronProblem checks a schedule with the parser that will run it.
func cronProblem(s string) string {
	if hasControl(s) {
		return "must be a single line of printable characters; " + cronForms
	}
	// The parser panics on a time zone prefix without a schedule after it.
	if (strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=")) && !strings.Contains(s, " ") {
		return "a time zone prefix must be followed by a space and the schedule, e.g. \"CRON_TZ=Europe/Berlin 0 3 * * *\""
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return err.Error() + "; " + cronForms
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok && every.Delay < time.Minute {
		return "must not run more often than once a minute: a backup takes longer than that"
	}
	return ""
}

// NextBackup is when schedule next fires after t; false for an empty or
// invalid schedule (stored specs are valid).
func NextBackup(schedule string, t time.Time) (time.Time, bool) {
	if schedule == "" || cronProblem(schedule) != "" {
		return time.Time{}, false
	}
	sched, _ := cron.ParseStandard(schedule)
	return sched.Next(t), true
}

const destinationExamples = "e.g. hdfs://namenode:8020/mysos/backups or file:///var/lib/mysos/backups"

// DestinationProblem says what is wrong with a backup destination URL, ""
// if nothing.
func DestinationProblem(s string) string { return destinationProblem(s) }

// destinationProblem accepts hdfs://host[:port]/path (the host cannot be
// left to an HDFS client configuration the executor may not have) and
// file:///absolute/path.
func destinationProblem(s string) string {
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return "must not contain spaces; " + destinationExamples
	}
	if hasControl(s) {
		return "must not contain control or invisible formatting characters; " + destinationExamples
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("not a URL (%v); %s", err, destinationExamples)
	}
	switch {
	case u.Opaque != "" || (u.Scheme != "hdfs" && u.Scheme != "file"):
		return "must be an hdfs:// or file:// URL, " + destinationExamples
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "must not contain a user, query or fragment, " + destinationExamples
	case u.Path == "" || u.Path == "/":
		return "must include a directory path, " + destinationExamples
	case hasControl(u.Path) || strings.ContainsFunc(u.Path, unicode.IsSpace):
		return "the path must not contain spaces, control characters or invisible formatting characters, even %-encoded; " + destinationExamples
	case hasDotSegment(u.Path):
		return "the path must not contain '.' or '..' segments, even %-encoded: write the directory's plain absolute path, " + destinationExamples
	case u.Scheme == "file" && u.Host != "" && u.Host != "localhost":
		return "a file URL names a local path with three slashes: file:///path"
	case u.Scheme == "file":
		return ""
	case u.Hostname() == "":
		return "must name the namenode host, " + destinationExamples
	case net.ParseIP(u.Hostname()) == nil && !hostnameRE.MatchString(u.Hostname()):
		return fmt.Sprintf("the namenode %q must be a host name or IP address, %s", u.Hostname(), destinationExamples)
	}
	return portProblem(u)
}

// hasControl reports control characters (NUL, newlines, escapes) and
// invisible formatting characters (U+202E, zero-width spaces).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
}

// hasDotSegment reports a "." or ".." segment in a slash-separated path.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func portProblem(u *url.URL) string {
	if strings.HasSuffix(u.Host, ":") {
		return "the port after ':' is missing, " + destinationExamples
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "the port must be between 1 and 65535, " + destinationExamples
		}
	}
	return ""
}

// Backup triggers.
const (
	BackupScheduled = "Scheduled"
	BackupOnDemand  = "OnDemand"
)

// BackupStatus is what the scheduler last saw of a cluster's backups.
type BackupStatus struct {
	// Running is the backup being taken, if any.
	Running *BackupRecord `json:"running,omitempty"`
	// Last is the last backup that succeeded.
	Last *BackupRecord `json:"last,omitempty"`
	// LastFailure is the last backup that failed.
	LastFailure *BackupRecord `json:"lastFailure,omitempty"`
	// NextScheduled is when the schedule fires next.
	NextScheduled *time.Time `json:"nextScheduled,omitempty"`
	// Archiver is the binlog archiver, with spec.backup.binlogArchiving.
	Archiver *ArchiverStatus `json:"archiver,omitempty"`
}

// ArchiverStatus says where the binlog archiver streams from and how its
// task is.
type ArchiverStatus struct {
	Instance string `json:"instance"`
	TaskID   string `json:"taskId,omitempty"`
	// State is the Mesos task state, or Pending before a launch.
	State string `json:"state"`
	// Message says why its last task ended.
	Message string `json:"message,omitempty"`
}

// BackupRecord describes one backup.
type BackupRecord struct {
	ID      string `json:"id"`
	Trigger string `json:"trigger,omitempty"`
	// Instance is the member copied.
	Instance   string     `json:"instance,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Duration is how long it took, e.g. "3.2s".
	Duration string `json:"duration,omitempty"`
	// Size is the stored (compressed) size in bytes.
	Size         int64  `json:"size,omitempty"`
	GTIDPosition string `json:"gtidPosition,omitempty"`
	Message      string `json:"message,omitempty"`
}

// Restore phases.
const (
	RestoreRunning = "Restoring"
	RestoreDone    = "Restored"
)

// RestoreStatus follows spec.restore.
type RestoreStatus struct {
	From         string     `json:"from"`
	Phase        string     `json:"phase"`
	GTIDPosition string     `json:"gtidPosition,omitempty"`
	CompletedAt  *time.Time `json:"completedAt,omitempty"`
	Message      string     `json:"message,omitempty"`
}

// Backup phases as the API shows them.
const (
	BackupPhasePending  = "Pending"
	BackupPhaseRunning  = "Running"
	BackupPhaseComplete = "Complete"
	BackupPhaseFailed   = "Failed"
)

// Backup is one backup as the API shows it: a complete one read from its
// target, or one being taken or failed, from its job.
type Backup struct {
	ID          string     `json:"id"`
	Namespace   string     `json:"namespace"`
	Cluster     string     `json:"cluster"`
	Phase       string     `json:"phase"`
	Trigger     string     `json:"trigger,omitempty"`
	Instance    string     `json:"instance,omitempty"`
	Destination string     `json:"destination,omitempty"`
	RequestedAt *time.Time `json:"requestedAt,omitempty"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	Duration    string     `json:"duration,omitempty"`
	// Size is the stored (compressed) size; RawSize the dump's.
	Size          int64    `json:"size,omitempty"`
	RawSize       int64    `json:"rawSize,omitempty"`
	SHA256        string   `json:"sha256,omitempty"`
	GTIDPosition  string   `json:"gtidPosition,omitempty"`
	Flavor        string   `json:"flavor,omitempty"`
	ServerVersion string   `json:"serverVersion,omitempty"`
	Databases     []string `json:"databases,omitempty"`
	Message       string   `json:"message,omitempty"`
}

// BackupList is a cluster's backups, oldest first.
type BackupList struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Items      []Backup `json:"items"`
}
