package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/spec"
)

// TestFoundation is the "done when", run once on the embedded etcd
// and once on an external one.
func TestFoundation(t *testing.T) {
	for name, etcd := range map[string]func(testing.TB) []string{
		"embedded": func(testing.TB) []string { return nil },
		"external": testutil.ExternalEtcd,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startScheduler(t, etcd(t))
			t.Run("ApplyIsIdempotentAndGenerationFollowsSpec", func(t *testing.T) { testApplyLifecycle(t, s) })
			t.Run("SurvivesRestart", func(t *testing.T) { testRestart(t, s) })
			t.Run("PruneDeletesOnlyDroppedLabelledClusters", func(t *testing.T) { testPrune(t, s) })
			t.Run("Diff", func(t *testing.T) { testDiff(t, s) })
			t.Run("Wait", func(t *testing.T) { testWait(t, s) })
			t.Run("Namespaces", func(t *testing.T) { testNamespaces(t, s) })
			t.Run("BadInputIsRejectedAndChangesNothing", func(t *testing.T) { testBadInput(t, s) })
			t.Run("Delete", func(t *testing.T) { testDelete(t, s) })
		})
	}
}

func quickstartPath(t testing.TB) string {
	p, err := filepath.Abs("../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// getCluster runs `get clusters NAME -o json` and decodes it.
func getCluster(t testing.TB, s *scheduler, name string, extra ...string) spec.MySQLCluster {
	t.Helper()
	out := s.mustCtl(append([]string{"get", "clusters", name, "-o", "json"}, extra...)...)
	var c spec.MySQLCluster
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("decode get output: %v\n%s", err, out)
	}
	return c
}

func expectLine(t testing.TB, out, want string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == want {
			return
		}
	}
	t.Fatalf("output lacks the line %q:\n%s", want, out)
}

func testApplyLifecycle(t *testing.T, s *scheduler) {
	qs := quickstartPath(t)
	expectLine(t, s.mustCtl("apply", "-f", qs), "mysqlcluster.mysos.io/quickstart created")
	c := getCluster(t, s, "quickstart")
	if c.Metadata.Generation != 1 || c.Metadata.UID == "" || c.Spec.Placement.SpreadKey == "" || c.Spec.Users[0].Host == "" {
		t.Fatalf("stored object lacks identity or defaults: %+v", c)
	}

	expectLine(t, s.mustCtl("apply", "-f", qs), "mysqlcluster.mysos.io/quickstart unchanged")
	if again := getCluster(t, s, "quickstart"); again.Metadata.Generation != 1 || again.Metadata.ResourceVersion != c.Metadata.ResourceVersion {
		t.Fatalf("re-apply wrote something: generation %d rv %s→%s", again.Metadata.Generation, c.Metadata.ResourceVersion, again.Metadata.ResourceVersion)
	}

	// get -o yaml output applies back as unchanged: status and server fields are accepted and ignored.
	roundTrip := writeFile(t, t.TempDir(), "rt.yaml", s.mustCtl("get", "clusters", "quickstart", "-o", "yaml"))
	expectLine(t, s.mustCtl("apply", "-f", roundTrip), "mysqlcluster.mysos.io/quickstart unchanged")

	scaled := writeFile(t, t.TempDir(), "scaled.yaml", strings.Replace(readFile(t, qs), "replicas: 3", "replicas: 5", 1))
	expectLine(t, s.mustCtl("apply", "-f", scaled, "--dry-run=server"), "mysqlcluster.mysos.io/quickstart configured (server dry run)")
	if got := getCluster(t, s, "quickstart"); got.Metadata.Generation != 1 {
		t.Fatalf("server dry run stored a change: generation %d", got.Metadata.Generation)
	}
	expectLine(t, s.mustCtl("apply", "-f", scaled), "mysqlcluster.mysos.io/quickstart configured")
	if got := getCluster(t, s, "quickstart"); got.Metadata.Generation != 2 || *got.Spec.Replicas != 5 {
		t.Fatalf("after a spec change: generation %d replicas %d; want 2 and 5", got.Metadata.Generation, *got.Spec.Replicas)
	}
	relabelled := writeFile(t, t.TempDir(), "relabelled.yaml", strings.Replace(readFile(t, scaled), "app: demo", "app: demo\n    tier: db", 1))
	expectLine(t, s.mustCtl("apply", "-f", relabelled), "mysqlcluster.mysos.io/quickstart configured")
	if got := getCluster(t, s, "quickstart"); got.Metadata.Generation != 2 || got.Metadata.Labels["tier"] != "db" {
		t.Fatalf("a label change moved generation to %d (want 2) or was lost", got.Metadata.Generation)
	}
	expectLine(t, s.mustCtl("apply", "-f", qs), "mysqlcluster.mysos.io/quickstart configured")

	table := s.mustCtl("get", "clusters")
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "quickstart") || !strings.Contains(table, "Pending") {
		t.Fatalf("table output:\n%s", table)
	}
	described := s.mustCtl("describe", "clusters", "quickstart")
	for _, want := range []string{"Name:", "quickstart", "Conditions:", "Accepted", "MesosUnavailable"} {
		if !strings.Contains(described, want) {
			t.Fatalf("describe lacks %q:\n%s", want, described)
		}
	}
}

func testRestart(t *testing.T, s *scheduler) {
	before := getCluster(t, s, "quickstart")
	s.restart()
	after := getCluster(t, s, "quickstart")
	if after.Metadata.UID != before.Metadata.UID || after.Metadata.Generation != before.Metadata.Generation ||
		after.Metadata.ResourceVersion != before.Metadata.ResourceVersion || *after.Spec.Replicas != *before.Spec.Replicas {
		t.Fatalf("cluster changed across a restart:\nbefore %+v\nafter  %+v", before.Metadata, after.Metadata)
	}
}

func clusterYAML(name, labels string) string {
	return "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata:\n  name: " + name +
		"\n  labels: {" + labels + "}\nspec:\n  replicas: 1\n"
}

func testPrune(t *testing.T, s *scheduler) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", clusterYAML("prune-a", "pipeline: gitops"))
	b := writeFile(t, dir, "b.yaml", clusterYAML("prune-b", "pipeline: gitops"))
	out := s.mustCtl("apply", "-f", dir, "--prune", "-l", "pipeline=gitops")
	expectLine(t, out, "mysqlcluster.mysos.io/prune-a created")
	expectLine(t, out, "mysqlcluster.mysos.io/prune-b created")
	other := t.TempDir()
	s.mustCtl("apply", "-f", writeFile(t, other, "c.yaml", clusterYAML("prune-c", "pipeline: manual")))
	s.mustCtl("apply", "-f", writeFile(t, other, "d.yaml", clusterYAML("prune-d", "")))

	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	out = s.mustCtl("apply", "-f", dir, "--prune", "-l", "pipeline=gitops")
	expectLine(t, out, "mysqlcluster.mysos.io/prune-a unchanged")
	expectLine(t, out, "mysqlcluster.mysos.io/prune-b pruned")
	if strings.Count(out, "pruned") != 1 {
		t.Fatalf("pruned more than prune-b:\n%s", out)
	}
	names := s.mustCtl("get", "clusters", "-o", "name")
	for _, want := range []string{"prune-a", "prune-c", "prune-d", "quickstart"} {
		if !strings.Contains(names, "mysqlcluster.mysos.io/"+want+"\n") {
			t.Fatalf("%s is gone after the prune:\n%s", want, names)
		}
	}
	if strings.Contains(names, "prune-b") {
		t.Fatalf("prune-b survived the prune:\n%s", names)
	}

	// A broken file in the directory stops everything: nothing applied, nothing pruned.
	writeFile(t, dir, "broken.yaml", "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata: {name: x}\nspec: {replicas: many}\n")
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	r := s.ctl("apply", "-f", dir, "--prune", "-l", "pipeline=gitops")
	if r.code == 0 || !strings.Contains(r.stderr, "spec.replicas") {
		t.Fatalf("apply of a broken directory: exit %d\n%s", r.code, r.stderr)
	}
	if r := s.ctl("get", "clusters", "prune-a"); r.code != 0 {
		t.Fatal("prune-a was pruned although the directory failed to parse")
	}
	if r := s.ctl("apply", "-f", dir, "--prune"); r.code == 0 || !strings.Contains(r.stderr, "-l") {
		t.Fatalf("--prune without -l must be refused: exit %d %s", r.code, r.stderr)
	}
}

func testDiff(t *testing.T, s *scheduler) {
	qs := quickstartPath(t)
	if r := s.ctl("diff", "-f", qs); r.code != 0 || r.stdout != "" {
		t.Fatalf("diff of the applied file: exit %d, output %q; want 0 and nothing", r.code, r.stdout)
	}
	changed := writeFile(t, t.TempDir(), "changed.yaml", strings.Replace(readFile(t, qs), "replicas: 3", "replicas: 7", 1))
	r := s.ctl("diff", "-f", changed)
	if r.code != 1 || !strings.Contains(r.stdout, "-  replicas: 3") || !strings.Contains(r.stdout, "+  replicas: 7") {
		t.Fatalf("diff of a change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	newOne := writeFile(t, t.TempDir(), "new.yaml", clusterYAML("diff-new", ""))
	if r := s.ctl("diff", "-f", newOne); r.code != 1 || !strings.Contains(r.stdout, "+  name: diff-new") {
		t.Fatalf("diff of a new cluster: exit %d\n%s", r.code, r.stdout)
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", "kind: [")
	if r := s.ctl("diff", "-f", bad); r.code < 2 {
		t.Fatalf("diff of a broken file: exit %d, want >1", r.code)
	}
	if r := s.ctl("get", "clusters", "diff-new"); r.code == 0 {
		t.Fatal("diff created the cluster it compared")
	}
}

func testWait(t *testing.T, s *scheduler) {
	expectLine(t, s.mustCtl("wait", "clusters/quickstart", "--for=condition=Accepted", "--timeout=30s"),
		"mysqlcluster.mysos.io/quickstart condition met")
	expectLine(t, s.mustCtl("wait", "clusters", "quickstart", "--for=condition=Ready=False", "--timeout=30s"),
		"mysqlcluster.mysos.io/quickstart condition met")
	r := s.ctl("wait", "clusters/quickstart", "--for=condition=Ready", "--timeout=500ms")
	if r.code == 0 || !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("wait for a condition that cannot hold: exit %d %s", r.code, r.stderr)
	}
	if r := s.ctl("wait", "clusters/quickstart", "--for=ready"); r.code == 0 || !strings.Contains(r.stderr, "condition=") {
		t.Fatalf("a malformed --for must be refused with the syntax: %s", r.stderr)
	}
}

func testNamespaces(t *testing.T, s *scheduler) {
	qs := quickstartPath(t)
	expectLine(t, s.mustCtl("apply", "-n", "tenant-b", "-f", qs), "mysqlcluster.mysos.io/quickstart (namespace tenant-b) created")
	a, b := getCluster(t, s, "quickstart"), getCluster(t, s, "quickstart", "-n", "tenant-b")
	if a.Metadata.UID == b.Metadata.UID || b.Metadata.Namespace != "tenant-b" {
		t.Fatal("the two namespaces share one object")
	}
	all := s.mustCtl("get", "clusters", "-A")
	if !strings.Contains(all, "NAMESPACE") || !strings.Contains(all, "tenant-b") || !strings.Contains(all, "default") {
		t.Fatalf("get -A:\n%s", all)
	}
	if out := s.mustCtl("get", "clusters", "-n", "tenant-c"); !strings.Contains(out, "No clusters found") {
		t.Fatalf("empty namespace:\n%s", out)
	}
	s.mustCtl("delete", "clusters", "quickstart", "-n", "tenant-b")
}

func testBadInput(t *testing.T, s *scheduler) {
	before := getCluster(t, s, "quickstart")
	dir := t.TempDir()
	cases := []struct {
		name, content string
		wants         []string
	}{
		{"unknown fields, all reported", strings.Replace(readFile(t, quickstartPath(t)), "replicas: 3", "replicas: 3\n  replica: 4\n  colour: blue", 1),
			[]string{"spec.replica", "replicas", "spec.colour"}},
		{"bad quantity and absurd replicas", strings.Replace(strings.Replace(readFile(t, quickstartPath(t)), "mem: 512Mi", "mem: 512Q", 1), "replicas: 3", "replicas: 1000", 1),
			[]string{"spec.resources.mem", "spec.replicas"}},
		{"wrong apiVersion", strings.Replace(readFile(t, quickstartPath(t)), "mysos.io/v1alpha1", "mysos.io/v9", 1), []string{"apiVersion"}},
		{"bad name", strings.Replace(readFile(t, quickstartPath(t)), "name: quickstart", "name: ../Quick Start", 1), []string{"metadata.name"}},
		{"malformed yaml", "apiVersion: [", []string{"yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.ctl("apply", "-f", writeFile(t, dir, "bad.yaml", tc.content))
			if r.code == 0 {
				t.Fatalf("accepted bad input:\n%s", r.stdout)
			}
			for _, want := range tc.wants {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("error does not mention %q:\n%s", want, r.stderr)
				}
			}
		})
	}
	// Rejected by the server, not the client: an immutable field.
	immutable := writeFile(t, dir, "immutable.yaml", strings.Replace(readFile(t, quickstartPath(t)), "flavor: mariadb", "flavor: mysql", 1))
	if r := s.ctl("apply", "-f", immutable); r.code == 0 || !strings.Contains(r.stderr, "spec.flavor") {
		t.Fatalf("immutable flavor change: exit %d %s", r.code, r.stderr)
	}
	noToken := s.ctlEnv([]string{"MYSOS_CONFIG=", "MYSOS_SERVER=http://" + s.addr}, "apply", "-f", quickstartPath(t))
	if noToken.code == 0 || !strings.Contains(noToken.stderr, "token") {
		t.Fatalf("apply without a token: exit %d %s", noToken.code, noToken.stderr)
	}
	wrongToken := s.ctlEnv([]string{"MYSOS_TOKEN=wrong"}, "get", "clusters")
	if wrongToken.code == 0 || !strings.Contains(wrongToken.stderr, "invalid bearer token") {
		t.Fatalf("get with a wrong token: exit %d %s", wrongToken.code, wrongToken.stderr)
	}
	after := getCluster(t, s, "quickstart")
	if after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Fatal("rejected input changed the stored cluster")
	}
}

func testDelete(t *testing.T, s *scheduler) {
	expectLine(t, s.mustCtl("delete", "clusters", "quickstart"), "mysqlcluster.mysos.io/quickstart deleted")
	r := s.ctl("get", "clusters", "quickstart")
	if r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("get after delete: exit %d %s", r.code, r.stderr)
	}
	if r := s.ctl("delete", "clusters", "quickstart"); r.code == 0 {
		t.Fatal("deleting a missing cluster succeeded")
	}
	s.mustCtl("delete", "clusters", "quickstart", "--ignore-not-found")
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
