package ctl

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

type deleteOptions struct {
	files          []string
	recursive      bool
	dryRun         string
	ignoreNotFound bool
}

func newDeleteCmd(g *globals) *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete (clusters NAME... | -f FILE|DIR)",
		Short: "Delete clusters",
		Long: `Delete clusters by name or by the files that define them.

Once Mysos runs instances, deletion kills their tasks, destroys their volumes
and releases their reservations before the cluster disappears.`,
		Example: `  mysosctl delete clusters quickstart
  mysosctl delete -f examples/quickstart.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dryRun, err := parseDryRun(o.dryRun)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			targets, err := deleteTargets(g, o, args)
			if err != nil {
				return err
			}
			failed := 0
			for _, t := range targets {
				g.setNamespace(t)
				_, deleted, err := c.Delete(cmd.Context(), t.Metadata.Namespace, t.Metadata.Name, dryRun)
				switch {
				case client.IsNotFound(err) && o.ignoreNotFound:
				case err != nil:
					failed++
					fmt.Fprintf(g.errOut, "error: %s: %v\n", objectRef(t), err)
				case deleted || dryRun:
					fmt.Fprintf(g.out, "%s deleted%s\n", objectRef(t), dryRunSuffix(dryRun))
				default:
					fmt.Fprintf(g.out, "%s deletion requested (the scheduler is cleaning up)\n", objectRef(t))
				}
			}
			if failed > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d deletions failed", failed, len(targets))}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "file, directory or - naming the clusters to delete")
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "R", false, "descend into subdirectories of -f directories")
	cmd.Flags().StringVar(&o.dryRun, "dry-run", "none", `"server" checks without deleting`)
	cmd.Flags().BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "treat a missing cluster as deleted")
	return cmd
}

func deleteTargets(g *globals, o *deleteOptions, args []string) ([]*spec.MySQLCluster, error) {
	if len(o.files) > 0 {
		if len(args) > 0 {
			return nil, errors.New("give either -f or clusters NAME..., not both")
		}
		return readManifests(g, o.files, o.recursive)
	}
	if len(args) < 2 {
		return nil, errors.New("name what to delete: mysosctl delete clusters NAME... or -f FILE")
	}
	if err := checkResource(args[0]); err != nil {
		return nil, err
	}
	var out []*spec.MySQLCluster
	for _, name := range args[1:] {
		out = append(out, &spec.MySQLCluster{Metadata: spec.ObjectMeta{Name: name}})
	}
	return out, nil
}
