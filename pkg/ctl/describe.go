package ctl

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/spec"
)

func newDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "describe clusters NAME...",
		Short:   "Show a cluster's spec, status, conditions and instances in detail",
		Example: `  mysosctl describe clusters quickstart`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkResource(args[0]); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			for i, name := range args[1:] {
				obj, err := c.Get(cmd.Context(), g.namespace, name)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(g.out)
				}
				describe(g.out, obj)
				evs, err := c.Events(cmd.Context(), g.namespace, name)
				describeEvents(g.out, evs, err)
			}
			return nil
		},
	}
}

func describe(w io.Writer, c *spec.MySQLCluster) {
	m, s, st := c.Metadata, c.Spec, c.Status
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	field := func(name string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", name, v) }
	field("Name", m.Name)
	field("Namespace", m.Namespace)
	field("Labels", keyValues(m.Labels))
	field("Annotations", keyValues(m.Annotations))
	field("UID", m.UID)
	field("Generation", m.Generation)
	field("Resource Version", m.ResourceVersion)
	field("Created", timestamp(m.CreationTimestamp))
	if m.DeletionTimestamp != nil {
		field("Deletion Requested", timestamp(m.DeletionTimestamp))
	}
	fmt.Fprintln(tw, "Spec:")
	if s.Replicas != nil {
		field("  Replicas", *s.Replicas)
	}
	field("  Flavor", s.Flavor+" "+s.Version)
	field("  Resources", fmt.Sprintf("cpus=%s mem=%s disk=%s", s.Resources.CPUs, s.Resources.Memory, s.Resources.Disk))
	field("  Placement", describePlacement(s.Placement))
	if len(s.MySQLConfig) > 0 {
		field("  MySQL Config", keyValues(s.MySQLConfig))
	}
	for _, u := range s.Users {
		field("  User", fmt.Sprintf("'%s'@'%s' %s on %s", u.Name, u.Host, strings.Join(u.Privileges, ","), strings.Join(u.Databases, ",")))
	}
	if s.Backup != nil {
		field("  Backup", describeBackupSpec(s.Backup))
	}
	if s.Restore != nil {
		field("  Restore From", s.Restore.From+" "+orDash(s.Restore.Destination))
	}
	if r := s.Router; r != nil {
		field("  Router", describeRouter(r))
	}
	fmt.Fprintln(tw, "Status:")
	field("  Phase", orDash(string(st.Phase)))
	field("  Observed Generation", st.ObservedGeneration)
	field("  Primary", orDash(st.CurrentPrimary))
	if len(st.ErrantInstances) > 0 {
		field("  Errant Instances", strings.Join(st.ErrantInstances, ", "))
	}
	_ = tw.Flush()
	describeOperation(w, st.Operation)
	describeLastFailover(w, st.LastFailover, s.Failover, m)
	describeBackups(w, st.Backup, st.Restore)
	describeConditions(w, st.Conditions)
	describeInstances(w, st.Instances)
}

// describeOperation shows the failover or switchover in progress, if any.
func describeOperation(w io.Writer, op *spec.Operation) {
	if op == nil {
		return
	}
	fmt.Fprintln(w, "Operation:")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "  Kind:\t%s\n", op.Kind)
	fmt.Fprintf(tw, "  ID:\t%s\n", op.ID)
	fmt.Fprintf(tw, "  From → To:\t%s → %s\n", orDash(op.From), switchoverTarget(op.To))
	fmt.Fprintf(tw, "  Step:\t%s\n", op.Step)
	fmt.Fprintf(tw, "  Started:\t%s\n", timestamp(&op.StartedAt))
	if op.Reason != "" {
		fmt.Fprintf(tw, "  Reason:\t%s\n", op.Reason)
	}
	fmt.Fprintf(tw, "  Blocked:\t%s\n", orDash(op.Blocked))
	_ = tw.Flush()
}

// describeLastFailover shows the last automatic failover and whether it
// still holds back the next one.
func describeLastFailover(w io.Writer, rec *spec.FailoverRecord, f spec.FailoverSpec, m spec.ObjectMeta) {
	if rec == nil {
		return
	}
	fmt.Fprintln(w, "Last failover:")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "  ID:\t%s\n", rec.ID)
	fmt.Fprintf(tw, "  From → To:\t%s → %s\n", rec.From, rec.To)
	fmt.Fprintf(tw, "  At:\t%s\n", timestamp(&rec.At))
	fmt.Fprintf(tw, "  Acknowledged:\t%s\n", acknowledgement(rec, f, m))
	_ = tw.Flush()
}

func acknowledgement(rec *spec.FailoverRecord, f spec.FailoverSpec, m spec.ObjectMeta) string {
	if rec.Acknowledged {
		return "yes"
	}
	until := rec.At.Add(f.BlockWindow.OrDefault(spec.DefaultBlockWindow))
	if time.Now().After(until) {
		return "no (its block window is over)"
	}
	return fmt.Sprintf("no: no automatic failover until %s, unless acknowledged (mysosctl failover ack %s%s)",
		until.UTC().Format(time.RFC3339), m.Name, namespaceFlag(m.Namespace))
}

// maxDescribedEvents is how many of a cluster's newest events describe shows.
const maxDescribedEvents = 20

// describeEvents ends a description with the cluster's newest events, as
// kubectl describe does; failing to read them spoils nothing above.
func describeEvents(w io.Writer, evs []spec.Event, err error) {
	fmt.Fprintln(w, "Events:")
	switch {
	case err != nil:
		fmt.Fprintf(w, "  <unable to list events: %v>\n", err)
	case len(evs) == 0:
		fmt.Fprintln(w, "  <none>")
	default:
		_ = printEvents(w, evs[max(0, len(evs)-maxDescribedEvents):], "  ", false, false)
	}
}

func describeConditions(w io.Writer, conds []spec.Condition) {
	fmt.Fprintln(w, "Conditions:")
	if len(conds) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
	for _, c := range conds {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.LastTransitionTime.Format(time.RFC3339), c.Message)
	}
	_ = tw.Flush()
}

func describeInstances(w io.Writer, insts []spec.InstanceStatus) {
	fmt.Fprintln(w, "Instances:")
	if len(insts) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tPHASE\tROLE\tSTATE\tHOST\tPORT\tAGENT\tVOLUME\tTASK")
	for _, i := range insts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", i.Name, orDash(i.Phase), orDash(i.Role), orDash(i.State),
			orDash(i.Host), i.Port, orDash(i.AgentID), orDash(i.Volume), orDash(i.TaskID))
	}
	_ = tw.Flush()
	for _, i := range insts {
		if i.Message != "" {
			fmt.Fprintf(w, "  %s: last task ended: %s\n", i.Name, i.Message)
		}
	}
}

func describePlacement(p spec.Placement) string {
	out := "spread by " + p.SpreadKey
	if p.MaxPerDomain != nil {
		out += fmt.Sprintf(" (at most %d per value)", *p.MaxPerDomain)
	}
	if len(p.Attributes) > 0 {
		out += ", agents with " + keyValues(p.Attributes)
	}
	return out + ", role " + p.Role
}

func keyValues(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

func timestamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339) + " (" + age(t) + " ago)"
}

func describeBackupSpec(b *spec.BackupSpec) string {
	out := "on demand"
	if b.Schedule != "" {
		out = fmt.Sprintf("%q", b.Schedule)
	}
	out += " to " + orDash(b.Destination)
	if b.Retention.Keep != nil {
		out += fmt.Sprintf(", keep %d", *b.Retention.Keep)
	}
	if b.Retention.MaxAge != "" {
		out += ", max age " + string(b.Retention.MaxAge)
	}
	return out
}

// describeBackups shows the last backups and a restore in progress.
func describeBackups(w io.Writer, b *spec.BackupStatus, r *spec.RestoreStatus) {
	if b == nil && r == nil {
		return
	}
	fmt.Fprintln(w, "Backups:")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	if b != nil {
		for _, row := range []struct {
			label string
			rec   *spec.BackupRecord
		}{{"Running", b.Running}, {"Last", b.Last}, {"Last Failure", b.LastFailure}} {
			if row.rec != nil {
				fmt.Fprintf(tw, "  %s:\t%s\n", row.label, backupLine(row.rec))
			}
		}
		if b.NextScheduled != nil {
			fmt.Fprintf(tw, "  Next Scheduled:\t%s\n", timestamp(b.NextScheduled))
		}
	}
	if r != nil {
		fmt.Fprintf(tw, "  Restore:\t%s from %s %s %s\n", r.Phase, r.From, r.GTIDPosition, r.Message)
	}
	_ = tw.Flush()
}

func backupLine(r *spec.BackupRecord) string {
	out := r.ID
	if r.Instance != "" {
		out += " of " + r.Instance
	}
	if r.FinishedAt != nil {
		out += " at " + timestamp(r.FinishedAt)
	}
	if r.Size > 0 {
		out += fmt.Sprintf(", %s in %s", humanBytes(r.Size), r.Duration)
	}
	if r.Message != "" {
		out += ": " + r.Message
	}
	return out
}

// humanBytes is a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// describeRouter names the router ports a cluster asks the schedulers
// started with --router-host to open.
func describeRouter(r *spec.RouterSpec) string {
	var parts []string
	if r.ReadWritePort != 0 {
		parts = append(parts, fmt.Sprintf("read-write :%d", r.ReadWritePort))
	}
	if r.ReadOnlyPort != 0 {
		parts = append(parts, fmt.Sprintf("read-only :%d", r.ReadOnlyPort))
	}
	return strings.Join(parts, ", ") + " (on each scheduler started with --router-host)"
}
