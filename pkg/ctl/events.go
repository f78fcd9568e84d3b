package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/spec"
)

// eventTimeFormat shows events to the millisecond, in UTC, so that the
// steps of a sub-second switchover read apart and line up across zones.
const eventTimeFormat = "2006-01-02T15:04:05.000Z"

type eventsOptions struct {
	output        string
	allNamespaces bool
}

func newEventsCmd(g *globals) *cobra.Command {
	o := &eventsOptions{}
	cmd := &cobra.Command{
		Use:   "events [CLUSTER]",
		Short: "List what happened to clusters: failovers, switchovers and their steps, oldest first",
		Long: `List what happened to clusters, oldest first: each step of a failover or
switchover with the time since it started, errant instances, refusals.
Mysos keeps the last 200 events of each cluster, and drops them with it.`,
		Example: `  mysosctl events quickstart
  mysosctl events -A
  mysosctl events quickstart -o yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvents(cmd.Context(), g, o, args)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the events of every namespace")
	return cmd
}

func runEvents(ctx context.Context, g *globals, o *eventsOptions, args []string) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if len(args) == 1 && o.allNamespaces {
		return errors.New("a cluster is named within one namespace: drop -A, or drop CLUSTER to list every namespace's events")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ns, name := g.namespace, ""
	if o.allNamespaces {
		ns = ""
	}
	if len(args) == 1 {
		name = args[0]
	}
	items, err := c.Events(ctx, ns, name)
	if err != nil {
		return err
	}
	if o.output != "table" {
		if items == nil {
			items = []spec.Event{}
		}
		return printStructured(g.out, spec.EventList{APIVersion: spec.APIVersion, Kind: spec.EventListKind, Items: items}, o.output)
	}
	if len(items) == 0 {
		// As get does for clusters.
		fmt.Fprintln(g.out, "No events found.")
		return nil
	}
	return printEvents(g.out, items, "", o.allNamespaces, name == "")
}

// printEvents writes a table of events, each line after indent; the
// namespace and cluster columns are there only when they vary.
func printEvents(w io.Writer, items []spec.Event, indent string, withNamespace, withCluster bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	header := []string{"TIME"}
	if withNamespace {
		header = append(header, "NAMESPACE")
	}
	if withCluster {
		header = append(header, "CLUSTER")
	}
	header = append(header, "TYPE", "REASON", "OPERATION", "ELAPSED", "INSTANCE", "MESSAGE")
	fmt.Fprintln(tw, indent+strings.Join(header, "\t"))
	for _, ev := range items {
		row := []string{ev.Time.UTC().Format(eventTimeFormat)}
		if withNamespace {
			row = append(row, ev.Namespace)
		}
		if withCluster {
			row = append(row, ev.Cluster)
		}
		// A message is one line of the table, whatever it holds.
		msg := strings.Join(strings.Fields(ev.Message), " ")
		row = append(row, orDash(ev.Type), orDash(ev.Reason), orDash(ev.Operation), orDash(string(ev.Elapsed)), orDash(ev.Instance), msg)
		fmt.Fprintln(tw, indent+strings.Join(row, "\t"))
	}
	return tw.Flush()
}
