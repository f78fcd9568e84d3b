package apiserver_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func routedClusterYAML(name string, rwPort int) string {
	return "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata:\n  name: " + name +
		"\nspec:\n  replicas: 1\n  router: {readWritePort: " + strconv.Itoa(rwPort) + "}\n"
}

// TestRouterPortsAreOneClusterEach: a cluster may not claim a router port
// another cluster has, in its namespace or another, nor one outside the
// operator's range (400 naming the field, nothing stored changes); its own
// port stays its own on update, and a port freed by an update can be taken.
func TestRouterPortsAreOneClusterEach(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	const teamA, teamB = "/api/v1/namespaces/team-a", "/api/v1/namespaces/team-b"
	if code, body := a.do("POST", teamA+"/clusters", "application/yaml", routedClusterYAML("one", 6446), bearer(teamToken)); code != http.StatusCreated {
		t.Fatalf("create with a free port: %d %s", code, body)
	}
	before := dumpEtcd(t, a.etcd)
	code, body := a.do("POST", teamA+"/clusters", "application/yaml", routedClusterYAML("two", 6446), bearer(teamToken))
	if code != http.StatusBadRequest || !strings.Contains(body, "spec.router.readWritePort") ||
		!strings.Contains(body, "taken by cluster one") {
		t.Fatalf("take a neighbour's port: %d %s; want 400 naming the field and cluster one", code, body)
	}
	code, body = a.do("POST", teamB+"/clusters", "application/yaml", routedClusterYAML("other", 6446))
	if code != http.StatusBadRequest || !strings.Contains(body, "another namespace") || strings.Contains(body, "team-a") {
		t.Fatalf("take another namespace's port: %d %s; want 400 that does not name it", code, body)
	}
	if after := dumpEtcd(t, a.etcd); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("a refused request changed what is stored")
	}
	if code, body := a.do("PUT", teamA+"/clusters/one", "application/yaml", routedClusterYAML("one", 6446)+"  failover: {automatic: false}\n", bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("update keeping its own port: %d %s", code, body)
	}
	code, body = a.do("PUT", teamA+"/clusters/one", "application/yaml", routedClusterYAML("one", 7446), bearer(teamToken))
	if code != http.StatusBadRequest || !strings.Contains(body, "within 6446-6999") || !strings.Contains(body, "--router-ports") {
		t.Fatalf("move outside the operator's range: %d %s; want 400 naming the range", code, body)
	}
	if code, body := a.do("PUT", teamA+"/clusters/one", "application/yaml", routedClusterYAML("one", 6500), bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("move to another port: %d %s", code, body)
	}
	if code, body := a.do("POST", teamB+"/clusters", "application/yaml", routedClusterYAML("other", 6446)); code != http.StatusCreated {
		t.Fatalf("take the freed port: %d %s", code, body)
	}
	// A claim left behind by a spec deleted past the API (etcdctl del)
	// does not keep its port.
	if _, err := a.etcd.Put(context.Background(), "/mysos/routerports/6600", "team-b/gone"); err != nil {
		t.Fatal(err)
	}
	if code, body := a.do("POST", teamA+"/clusters", "application/yaml", routedClusterYAML("three", 6600), bearer(teamToken)); code != http.StatusCreated {
		t.Fatalf("take a port whose claim's owner is gone: %d %s", code, body)
	}
}
