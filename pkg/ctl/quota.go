package ctl

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

func newQuotaCmd(g *globals) *cobra.Command {
	var output string
	var hard spec.QuotaAmounts
	var instances int64
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Show, set and delete a namespace's quota (-n NAMESPACE)",
		Long: `Show, set and delete the quota of a namespace (-n).

A quota caps what the namespace's clusters ask for in total: instances
(spec.replicas) and cpus, mem and disk (spec.resources times replicas).
Creating or growing a cluster past it is refused; shrinking never is. Only
an admin of every namespace sets quotas; every token of the namespace can
read its quota.`,
	}
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the quota and what the namespace uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd.Context(), g, output, func(c *client.Client, ctx context.Context) (*spec.ResourceQuota, error) {
				return c.Quota(ctx, g.namespace)
			}, func(q *spec.ResourceQuota) error {
				used := spec.QuotaAmounts{}
				if q.Used != nil {
					used = *q.Used
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RESOURCE\tUSED\tLIMIT")
				fmt.Fprintf(tw, "instances\t%s\t%s\n", count(used.Instances), count(q.Hard.Instances))
				fmt.Fprintf(tw, "cpus\t%s\t%s\n", orDash(string(used.CPUs)), orDash(string(q.Hard.CPUs)))
				fmt.Fprintf(tw, "mem\t%s\t%s\n", orDash(string(used.Memory)), orDash(string(q.Hard.Memory)))
				fmt.Fprintf(tw, "disk\t%s\t%s\n", orDash(string(used.Disk)), orDash(string(q.Hard.Disk)))
				return tw.Flush()
			})
		},
	}
	get.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	set := &cobra.Command{
		Use:     "set",
		Short:   "Set the quota (limits left out are not limited)",
		Example: "  mysosctl quota set -n shop --instances 9 --cpus 12 --mem 48Gi --disk 1Ti",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("instances") {
				hard.Instances = &instances
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.SetQuota(cmd.Context(), spec.ResourceQuota{Namespace: g.namespace, Hard: hard}); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "quota/%s set\n", g.namespace)
			return nil
		},
	}
	set.Flags().Int64Var(&instances, "instances", 0, "most MySQL instances in the namespace")
	set.Flags().Var((*quantityFlag)(&hard.CPUs), "cpus", "most cpus, e.g. 12 or 1500m")
	set.Flags().Var((*quantityFlag)(&hard.Memory), "mem", "most memory, e.g. 48Gi")
	set.Flags().Var((*quantityFlag)(&hard.Disk), "disk", "most disk, e.g. 1Ti")
	del := &cobra.Command{
		Use:   "delete",
		Short: "Remove the quota: the namespace is no longer limited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteQuota(cmd.Context(), g.namespace); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "quota/%s deleted\n", g.namespace)
			return nil
		},
	}
	cmd.AddCommand(get, set, del)
	return cmd
}

func count(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

// quantityFlag is a spec.Quantity as a command-line flag.
type quantityFlag spec.Quantity

func (q *quantityFlag) String() string { return string(*q) }
func (q *quantityFlag) Type() string   { return "quantity" }
func (q *quantityFlag) Set(s string) error {
	v, err := spec.ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = quantityFlag(v)
	return nil
}
