package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// manifestExtensions are the files a directory contributes to apply/diff.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

type applyOptions struct {
	files     []string
	recursive bool
	dryRun    string
	prune     bool
	selector  string
}

func newApplyCmd(g *globals) *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update clusters from YAML files",
		Long: `Create or update clusters from YAML (or JSON) files, directories or stdin.

Re-applying an unchanged file changes nothing and prints "unchanged". With
--prune -l KEY=VALUE, clusters carrying that label that the files no longer
hold are deleted; clusters without the label are never touched. Nothing is
applied if any file fails to parse, and nothing is pruned if any apply fails.`,
		Example: `  mysosctl apply -f examples/quickstart.yaml
  mysosctl apply -f clusters/ --prune -l team=shop
  mysosctl apply -f cluster.yaml --dry-run=server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runApply(cmd.Context(), g, o) },
	}
	addFileFlags(cmd, &o.files, &o.recursive)
	cmd.Flags().StringVar(&o.dryRun, "dry-run", "none", `"server" validates and defaults on the server without storing; "none" applies`)
	cmd.Flags().BoolVar(&o.prune, "prune", false, "delete labelled clusters that the files no longer hold (requires -l)")
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "only apply (and prune) clusters with these labels, e.g. team=shop")
	return cmd
}

func addFileFlags(cmd *cobra.Command, files *[]string, recursive *bool) {
	cmd.Flags().StringArrayVarP(files, "filename", "f", nil, "file, directory or - for stdin (repeatable)")
	cmd.Flags().BoolVarP(recursive, "recursive", "R", false, "descend into subdirectories of -f directories")
	_ = cmd.MarkFlagRequired("filename")
}

func runApply(ctx context.Context, g *globals, o *applyOptions) error {
	dryRun, err := parseDryRun(o.dryRun)
	if err != nil {
		return err
	}
	sel, err := spec.ParseSelector(o.selector)
	if err != nil {
		return fmt.Errorf("-l/--selector: %w", err)
	}
	if o.prune && sel.Empty() {
		return errors.New("--prune needs -l/--selector: only clusters carrying those labels may be pruned")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	objs, err := readManifests(g, o.files, o.recursive)
	if err != nil {
		return err
	}
	objs = slices.DeleteFunc(objs, func(obj *spec.MySQLCluster) bool { return !sel.Matches(obj.Metadata.Labels) })
	suffix := dryRunSuffix(dryRun)
	failed := 0
	for _, obj := range objs {
		action, err := applyOne(ctx, c, obj, dryRun)
		if err != nil {
			failed++
			fmt.Fprintf(g.errOut, "error: %s: %v\n", objectRef(obj), err)
			continue
		}
		fmt.Fprintf(g.out, "%s %s%s\n", objectRef(obj), action, suffix)
	}
	if failed > 0 {
		msg := fmt.Sprintf("%d of %d clusters failed to apply", failed, len(objs))
		if o.prune {
			msg += "; nothing was pruned"
		}
		return &ExitError{Code: 1, Err: errors.New(msg)}
	}
	if o.prune {
		return prune(ctx, g, c, objs, sel.String(), dryRun)
	}
	return nil
}

// applyOne creates obj or updates it and reports what happened: created,
// configured or unchanged. A conflict (someone else wrote in between) is
// retried against the fresh object, as kubectl apply does.
func applyOne(ctx context.Context, c *client.Client, obj *spec.MySQLCluster, dryRun bool) (string, error) {
	const attempts = 3
	var err error
	for range attempts {
		var live *spec.MySQLCluster
		live, err = c.Get(ctx, obj.Metadata.Namespace, obj.Metadata.Name)
		if client.IsNotFound(err) {
			if _, err = c.Create(ctx, obj, dryRun); client.IsAlreadyExists(err) {
				continue
			}
			return "created", err
		}
		if err != nil {
			return "", err
		}
		desired := *obj
		desired.Metadata.ResourceVersion = live.Metadata.ResourceVersion
		var updated *spec.MySQLCluster
		updated, err = c.Update(ctx, &desired, dryRun)
		if client.IsConflict(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		if unchanged(live, updated) {
			return "unchanged", nil
		}
		return "configured", nil
	}
	return "", err
}

// unchanged compares what the user owns; a dry run returns the merged object
// without a new resourceVersion, so the revision alone cannot tell.
func unchanged(live, updated *spec.MySQLCluster) bool {
	return live.Metadata.Generation == updated.Metadata.Generation &&
		spec.SameJSON(live.Spec, updated.Spec) &&
		spec.SameJSON(live.Metadata.Labels, updated.Metadata.Labels) &&
		spec.SameJSON(live.Metadata.Annotations, updated.Metadata.Annotations)
}

// prune deletes clusters matching selector (in every namespace) that are not
// among the applied objects.
func prune(ctx context.Context, g *globals, c *client.Client, applied []*spec.MySQLCluster, selector string, dryRun bool) error {
	keep := map[string]bool{}
	for _, obj := range applied {
		keep[obj.Key()] = true
	}
	live, err := c.List(ctx, "", selector)
	if err != nil {
		return fmt.Errorf("list clusters to prune: %w", err)
	}
	for _, obj := range live {
		if keep[obj.Key()] {
			continue
		}
		if _, _, err := c.Delete(ctx, obj.Metadata.Namespace, obj.Metadata.Name, dryRun); err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("prune %s: %w", objectRef(obj), err)
		}
		fmt.Fprintf(g.out, "%s pruned%s\n", objectRef(obj), dryRunSuffix(dryRun))
	}
	return nil
}

// readManifests decodes every document of every file; any error stops
// everything before a single object is sent.
func readManifests(g *globals, paths []string, recursive bool) ([]*spec.MySQLCluster, error) {
	var objs []*spec.MySQLCluster
	var problems []string
	seen := map[string]string{}
	for _, p := range paths {
		files, err := expandPath(p, recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readInput(g.in, f)
			if err != nil {
				return nil, err
			}
			// Parse checks values too, so every problem shows before anything
			// is sent; the objects sent are the undefaulted ones, leaving
			// defaults to the server.
			if _, err := spec.Parse(data); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s", displayName(f), indent(err.Error())))
				continue
			}
			docs, err := spec.DecodeAll(data)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s", displayName(f), indent(err.Error())))
				continue
			}
			for _, obj := range docs {
				g.setNamespace(obj)
				if prev, dup := seen[obj.Key()]; dup {
					problems = append(problems, fmt.Sprintf("%s: cluster %s is also defined in %s", displayName(f), obj.Key(), prev))
				}
				seen[obj.Key()] = displayName(f)
				objs = append(objs, obj)
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing was applied:\n%s", strings.Join(problems, "\n"))
	}
	return objs, nil
}

// setNamespace fills the namespace from -n, and refuses nothing: the server
// rejects a body whose namespace differs from the URL's.
func (g *globals) setNamespace(obj *spec.MySQLCluster) {
	if obj.Metadata.Namespace == "" {
		obj.Metadata.Namespace = g.namespace
	}
}

func expandPath(p string, recursive bool) ([]string, error) {
	if p == "-" {
		return []string{"-"}, nil
	}
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", p, err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != p && !recursive {
			return filepath.SkipDir
		}
		if !d.IsDir() && slices.Contains(manifestExtensions, strings.ToLower(filepath.Ext(path))) {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

func readInput(stdin io.Reader, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

func displayName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

func indent(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return "\n  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func parseDryRun(v string) (bool, error) {
	switch v {
	case "", "none":
		return false, nil
	case "server":
		return true, nil
	}
	return false, fmt.Errorf(`--dry-run=%s: use "server" or "none"`, v)
}

func dryRunSuffix(dryRun bool) string {
	if dryRun {
		return " (server dry run)"
	}
	return ""
}

// objectRef names an object as kubectl does, with its namespace when it is
// not the default one.
func objectRef(obj *spec.MySQLCluster) string {
	ref := "mysqlcluster.mysos.io/" + obj.Metadata.Name
	if ns := obj.Metadata.Namespace; ns != "" && ns != spec.DefaultNamespace {
		ref += " (namespace " + ns + ")"
	}
	return ref
}
