package ctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// switchoverPollInterval is how often switchover --wait looks at the
// cluster: finer than wait's, since a switchover takes about a second and
// the time it reports should not be mostly polling.
const switchoverPollInterval = 100 * time.Millisecond

type switchoverOptions struct {
	to      string
	wait    bool
	timeout time.Duration
}

func newSwitchoverCmd(g *globals) *cobra.Command {
	o := &switchoverOptions{}
	cmd := &cobra.Command{
		Use:   "switchover CLUSTER [--to INSTANCE]",
		Short: "Hand a cluster's primary role to a replica, without losing a transaction",
		Long: `Hand a cluster's primary role to a replica, without losing a transaction.

The primary turns read-only, the new primary catches up with everything it
wrote, then takes the writes. Without --to, Mysos picks the most up-to-date
healthy replica. The cluster must be Ready, with no failover or switchover
in progress.

With --wait (the default) the command returns once the switchover is over,
saying how long it took; follow its steps with "mysosctl events CLUSTER".`,
		Example: `  mysosctl switchover quickstart
  mysosctl switchover quickstart --to quickstart-2 --timeout 5m
  mysosctl switchover quickstart --wait=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSwitchover(cmd.Context(), g, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.to, "to", "", "the instance to promote, e.g. quickstart-1 (default: the most up-to-date replica)")
	cmd.Flags().BoolVar(&o.wait, "wait", true, "wait until the switchover is over")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "with --wait, give up waiting after this long (the switchover goes on)")
	return cmd
}

func runSwitchover(ctx context.Context, g *globals, o *switchoverOptions, name string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	if o.wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	start := time.Now()
	op, err := c.Switchover(ctx, g.namespace, name, o.to)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s switchover %s accepted: %s → %s\n", name, op.ID, op.From, switchoverTarget(op.To))
	if !o.wait {
		return nil
	}
	obj, last, err := awaitOperation(ctx, c, g.namespace, name, op)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s waiting for switchover %s of mysqlclusters/%s (%s); it goes on: follow it with %s",
			o.timeout, op.ID, name, operationState(last), eventsHint(g, name))
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	if p := obj.Status.CurrentPrimary; p != "" && p != op.From {
		fmt.Fprintf(g.out, "%s is the primary; the switchover took %s\n", p, took.Round(time.Millisecond))
		return nil
	}
	return switchoverFailed(ctx, g, c, name, obj, last)
}

func switchoverTarget(to string) string {
	if to == "" {
		return "the most up-to-date replica"
	}
	return to
}

// awaitOperation polls the cluster until op is no longer its operation
// (over, or replaced by another), and returns the cluster then and the last
// state of op seen. It fails with ctx's error when ctx ends.
func awaitOperation(ctx context.Context, c *client.Client, ns, name string, op *spec.Operation) (*spec.MySQLCluster, *spec.Operation, error) {
	last := op
	ticker := time.NewTicker(switchoverPollInterval)
	defer ticker.Stop()
	for {
		obj, err := c.Get(ctx, ns, name)
		switch {
		case ctx.Err() != nil:
			return nil, last, ctx.Err()
		case err != nil:
			return nil, last, err
		}
		cur := obj.Status.Operation
		if cur == nil || cur.ID != op.ID {
			return obj, last, nil
		}
		last = cur
		select {
		case <-ctx.Done():
			return nil, last, ctx.Err()
		case <-ticker.C:
		}
	}
}

// operationState says where an operation stands, for error messages.
func operationState(op *spec.Operation) string {
	if op.Blocked != "" {
		return fmt.Sprintf("at step %s, blocked: %s", op.Step, op.Blocked)
	}
	return "at step " + op.Step
}

// switchoverFailed explains a switchover that ended with the old primary
// still in place (or none): what blocked it as last seen, else the newest
// warning the reconciler recorded for it.
func switchoverFailed(ctx context.Context, g *globals, c *client.Client, name string, obj *spec.MySQLCluster, last *spec.Operation) error {
	why := last.Blocked
	if why == "" {
		why = newestWarning(ctx, c, g.namespace, name, last.ID)
	}
	if why == "" {
		why = "no reason was recorded; see " + eventsHint(g, name)
	}
	if obj.Status.CurrentPrimary == "" {
		return fmt.Errorf("switchover %s of mysqlclusters/%s ended with no primary: %s", last.ID, name, why)
	}
	return fmt.Errorf("switchover %s of mysqlclusters/%s ended but %s is still the primary: %s", last.ID, name, obj.Status.CurrentPrimary, why)
}

// newestWarning is the message of the newest Warning event of operation
// id, or "" when there is none or the events cannot be read.
func newestWarning(ctx context.Context, c *client.Client, ns, name, id string) string {
	evs, err := c.Events(ctx, ns, name)
	if err != nil {
		return ""
	}
	for _, ev := range slices.Backward(evs) {
		if ev.Type == spec.EventWarning && ev.Operation == id {
			return ev.Message
		}
	}
	return ""
}

func eventsHint(g *globals, name string) string {
	return "mysosctl events " + name + namespaceFlag(g.namespace)
}

// namespaceFlag is what a suggested command needs to reach namespace ns.
func namespaceFlag(ns string) string {
	if ns == "" || ns == spec.DefaultNamespace {
		return ""
	}
	return " -n " + ns
}

func newReseedCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reseed CLUSTER INSTANCE",
		Short: "Re-seed an errant instance from the primary",
		Long: `Re-seed an errant instance: one holding transactions the primary lacks, such
as a former primary that committed writes no replica received before it failed.
Those writes were never acknowledged to a client. Its task is killed, its
volume destroyed, and the instance starts afresh from a copy of the primary.
spec.failover.reseedErrant: true does this automatically.`,
		Example: `  mysosctl reseed quickstart quickstart-0`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Reseed(cmd.Context(), g.namespace, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s instance %s will be re-seeded from the primary\n", args[0], args[1])
			return nil
		},
	}
}

func newFailoverCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Act on a cluster's automatic failovers",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "ack CLUSTER",
		Short: "Acknowledge a cluster's last automatic failover, lifting its block window",
		Long: `Acknowledge a cluster's last automatic failover.

After an automatic failover, Mysos does not fail the same cluster over again
within spec.failover.blockWindow (5m by default), so that a flapping primary
does not bounce writes around. Acknowledging the last failover says a human
has looked at it: the block window no longer applies.`,
		Example: `  mysosctl failover ack quickstart`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rec, err := c.AckFailover(cmd.Context(), g.namespace, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s failover %s acknowledged: the block window no longer applies\n", args[0], rec.ID)
			return nil
		},
	})
	return cmd
}
