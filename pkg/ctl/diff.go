package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

func newDiffCmd(g *globals) *cobra.Command {
	var files []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what apply would change",
		Long: `Show what apply would change, as a unified diff between the live clusters and
what the server would store (defaults applied, by a server-side dry run).

Exit status: 0 when there are no differences, 1 when there are, more than 1
on error, like kubectl diff. The diff program is "diff -u -N" unless
MYSOS_EXTERNAL_DIFF names another.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			differs, err := runDiff(cmd.Context(), g, files, recursive)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if differs {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	addFileFlags(cmd, &files, &recursive)
	return cmd
}

func runDiff(ctx context.Context, g *globals, files []string, recursive bool) (bool, error) {
	c, err := g.client()
	if err != nil {
		return false, err
	}
	objs, err := readManifests(g, files, recursive)
	if err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp("", "mysosctl-diff-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	liveDir, mergedDir := filepath.Join(tmp, "LIVE"), filepath.Join(tmp, "MERGED")
	for _, dir := range []string{liveDir, mergedDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, err
		}
	}
	for _, obj := range objs {
		live, merged, err := liveAndMerged(ctx, c, obj)
		if err != nil {
			return false, fmt.Errorf("%s: %w", objectRef(obj), err)
		}
		file := "mysos.io.v1alpha1.MySQLCluster." + obj.Metadata.Namespace + "." + obj.Metadata.Name
		if err := writeForDiff(filepath.Join(liveDir, file), live); err != nil {
			return false, err
		}
		if err := writeForDiff(filepath.Join(mergedDir, file), merged); err != nil {
			return false, err
		}
	}
	return externalDiff(g, liveDir, mergedDir)
}

// liveAndMerged returns the stored object (nil if none) and what apply would
// make of it.
func liveAndMerged(ctx context.Context, c *client.Client, obj *spec.MySQLCluster) (live, merged *spec.MySQLCluster, err error) {
	live, err = c.Get(ctx, obj.Metadata.Namespace, obj.Metadata.Name)
	if client.IsNotFound(err) {
		merged, err = c.Create(ctx, obj, true)
		return nil, merged, err
	}
	if err != nil {
		return nil, nil, err
	}
	desired := *obj
	desired.Metadata.ResourceVersion = live.Metadata.ResourceVersion
	merged, err = c.Update(ctx, &desired, true)
	return live, merged, err
}

// writeForDiff writes obj without status (which apply never changes) as
// YAML; a nil obj leaves no file, which diff -N shows as all-new.
func writeForDiff(path string, obj *spec.MySQLCluster) error {
	if obj == nil {
		return nil
	}
	cp := *obj
	cp.Status = spec.ClusterStatus{}
	raw, err := yaml.Marshal(&cp)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// externalDiff runs the diff program; its exit status 1 means "differences".
func externalDiff(g *globals, a, b string) (bool, error) {
	argv := []string{"diff", "-u", "-N"}
	if custom := strings.Fields(os.Getenv("MYSOS_EXTERNAL_DIFF")); len(custom) > 0 {
		argv = custom
	}
	cmd := exec.Command(argv[0], append(argv[1:], a, b)...)
	cmd.Stdout, cmd.Stderr = g.out, g.errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return false, nil
}
