package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/mysos-project/mysos/pkg/spec"
)

// resourceNames are the spellings accepted for the cluster resource.
var resourceNames = []string{"clusters", "cluster", "mysqlclusters", "mysqlcluster", "mc"}

type getOptions struct {
	output        string
	allNamespaces bool
	selector      string
}

func newGetCmd(g *globals) *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get clusters [NAME...]",
		Short: "List clusters or show some",
		Example: `  mysosctl get clusters
  mysosctl get clusters -A -o wide
  mysosctl get clusters quickstart -o yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkResource(args[0]); err != nil {
				return err
			}
			return runGet(cmd.Context(), g, o, args[1:])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, wide, yaml, json, name or jsonpath={.status.endpoints.primary}")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list clusters of every namespace")
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "only clusters with these labels, e.g. team=shop,env!=dev")
	return cmd
}

func checkResource(name string) error {
	if slices.Contains(resourceNames, strings.ToLower(name)) {
		return nil
	}
	return fmt.Errorf("unknown resource type %q: Mysos serves \"clusters\" (also: %s)", name, strings.Join(resourceNames[1:], ", "))
}

func runGet(ctx context.Context, g *globals, o *getOptions, names []string) error {
	if !slices.Contains([]string{"table", "wide", "yaml", "json", "name"}, o.output) && !strings.HasPrefix(o.output, "jsonpath=") {
		return fmt.Errorf("-o %s: use table, wide, yaml, json, name or jsonpath={.status.phase}", o.output)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	var items []*spec.MySQLCluster
	if len(names) == 0 {
		ns := g.namespace
		if o.allNamespaces {
			ns = ""
		}
		if items, err = c.List(ctx, ns, o.selector); err != nil {
			return err
		}
	}
	for _, name := range names {
		obj, err := c.Get(ctx, g.namespace, name)
		if err != nil {
			return err
		}
		items = append(items, obj)
	}
	single := len(names) == 1
	return printClusters(g.out, items, o.output, single, o.allNamespaces)
}

func printClusters(w io.Writer, items []*spec.MySQLCluster, format string, single, withNamespace bool) error {
	if expr, ok := strings.CutPrefix(format, "jsonpath="); ok {
		for _, obj := range items {
			out, err := jsonPath(obj, expr)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, out)
		}
		return nil
	}
	switch format {
	case "json", "yaml":
		var v any = items
		if single {
			v = items[0]
		} else {
			list := spec.MySQLClusterList{APIVersion: spec.APIVersion, Kind: spec.ListKind, Items: items}
			if list.Items == nil {
				list.Items = []*spec.MySQLCluster{}
			}
			v = list
		}
		return printStructured(w, v, format)
	case "name":
		for _, obj := range items {
			fmt.Fprintln(w, "mysqlcluster.mysos.io/"+obj.Metadata.Name)
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintln(w, "No clusters found.")
		return nil
	}
	return printTable(w, items, format == "wide", withNamespace)
}

func printStructured(w io.Writer, v any, format string) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if raw, err = yaml.JSONToYAML(raw); err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	_, err = fmt.Fprintln(w, string(raw))
	return err
}

func printTable(w io.Writer, items []*spec.MySQLCluster, wide, withNamespace bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	header := []string{"NAME", "REPLICAS", "READY", "PHASE", "PRIMARY", "AGE"}
	if wide {
		header = append(header, "ENDPOINT", "ROUTER", "FLAVOR", "VERSION", "CPUS", "MEM", "DISK", "GENERATION")
	}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, obj := range items {
		fmt.Fprintln(tw, strings.Join(tableRow(obj, wide, withNamespace), "\t"))
	}
	return tw.Flush()
}

func tableRow(obj *spec.MySQLCluster, wide, withNamespace bool) []string {
	replicas := "-"
	if obj.Spec.Replicas != nil {
		replicas = fmt.Sprint(*obj.Spec.Replicas)
	}
	row := []string{
		obj.Metadata.Name, replicas,
		fmt.Sprintf("%d/%s", obj.Status.ReadyReplicas, replicas),
		orDash(string(obj.Status.Phase)), orDash(obj.Status.CurrentPrimary), age(obj.Metadata.CreationTimestamp),
	}
	if wide {
		r := obj.Spec.Resources
		endpoint := ""
		if e := obj.Status.Endpoints; e != nil {
			endpoint = e.Primary
		}
		row = append(row, orDash(endpoint), routerPorts(obj.Spec.Router), obj.Spec.Flavor, obj.Spec.Version, string(r.CPUs), string(r.Memory), string(r.Disk),
			fmt.Sprint(obj.Metadata.Generation))
	}
	if withNamespace {
		row = append([]string{obj.Metadata.Namespace}, row...)
	}
	return row
}

// routerPorts is "RW/RO" of spec.router ("-" for a port not named), or
// "-" without one.
func routerPorts(r *spec.RouterSpec) string {
	if r == nil {
		return "-"
	}
	port := func(p int32) string {
		if p == 0 {
			return "-"
		}
		return strconv.Itoa(int(p))
	}
	return port(r.ReadWritePort) + "/" + port(r.ReadOnlyPort)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age formats a duration the way kubectl does: 45s, 12m, 5h, 3d.
func age(t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Since(*t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
