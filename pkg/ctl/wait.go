package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// waitPollInterval is how often wait asks the API again.
const waitPollInterval = 250 * time.Millisecond

func newWaitCmd(g *globals) *cobra.Command {
	var forCond string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait (clusters/NAME... | clusters NAME...) --for=condition=TYPE[=STATUS] | --for=delete",
		Short: "Wait until clusters reach a condition or are deleted",
		Long: `Wait until clusters reach a condition or are deleted.

A condition counts only once it describes the cluster's current generation,
so "apply then wait" never returns on a stale Ready.`,
		Example: `  mysosctl wait clusters/quickstart --for=condition=Ready --timeout=5m
  mysosctl wait clusters quickstart --for=condition=Ready=False
  mysosctl wait clusters/quickstart --for=delete`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pred, err := parseWaitFor(forCond)
			if err != nil {
				return err
			}
			names, err := waitNames(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for _, name := range names {
				if err := waitOne(ctx, c, g.namespace, name, pred); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s %s\n", name, pred.met)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&forCond, "for", "", "condition=TYPE[=STATUS] or delete")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	_ = cmd.MarkFlagRequired("for")
	return cmd
}

// waitPredicate decides whether a cluster (nil when deleted) is done.
type waitPredicate struct {
	test func(*spec.MySQLCluster) bool
	met  string
	desc string
}

func parseWaitFor(v string) (waitPredicate, error) {
	if v == "delete" {
		return waitPredicate{test: func(c *spec.MySQLCluster) bool { return c == nil }, met: "deleted", desc: "deletion"}, nil
	}
	rest, ok := strings.CutPrefix(v, "condition=")
	if !ok || rest == "" {
		return waitPredicate{}, fmt.Errorf("--for=%s: use condition=TYPE[=STATUS] or delete", v)
	}
	condType, want, hasStatus := strings.Cut(rest, "=")
	if !hasStatus {
		want = string(spec.ConditionTrue)
	}
	want = normalizeConditionStatus(want)
	if want == "" {
		return waitPredicate{}, fmt.Errorf("--for=%s: the status must be True, False or Unknown", v)
	}
	test := func(c *spec.MySQLCluster) bool {
		if c == nil {
			return false
		}
		cond := c.Status.FindCondition(condType)
		return cond != nil && string(cond.Status) == want &&
			(cond.ObservedGeneration == 0 || cond.ObservedGeneration >= c.Metadata.Generation)
	}
	return waitPredicate{test: test, met: "condition met", desc: "condition " + condType + "=" + want}, nil
}

func normalizeConditionStatus(s string) string {
	for _, st := range []spec.ConditionStatus{spec.ConditionTrue, spec.ConditionFalse, spec.ConditionUnknown} {
		if strings.EqualFold(s, string(st)) {
			return string(st)
		}
	}
	return ""
}

// waitNames accepts kubectl's spellings: clusters/a clusters/b, or clusters a b.
func waitNames(args []string) ([]string, error) {
	var names []string
	if !strings.Contains(args[0], "/") {
		if err := checkResource(args[0]); err != nil {
			return nil, err
		}
		names = args[1:]
	} else {
		for _, a := range args {
			kind, name, _ := strings.Cut(a, "/")
			if err := checkResource(kind); err != nil {
				return nil, err
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("name the clusters to wait for: clusters/NAME")
	}
	return names, nil
}

func waitOne(ctx context.Context, c *client.Client, ns, name string, pred waitPredicate) error {
	ticker := time.NewTicker(waitPollInterval)
	defer ticker.Stop()
	for {
		obj, err := c.Get(ctx, ns, name)
		switch {
		case client.IsNotFound(err):
			obj = nil
		case ctx.Err() != nil:
			return fmt.Errorf("timed out waiting for %s on mysqlclusters/%s", pred.desc, name)
		case err != nil:
			return err
		}
		if pred.test(obj) {
			return nil
		}
		if obj == nil && pred.met != "deleted" {
			return fmt.Errorf("mysqlclusters/%s does not exist", name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s on mysqlclusters/%s", pred.desc, name)
		case <-ticker.C:
		}
	}
}
