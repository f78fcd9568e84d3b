package apiserver_test

import (
	"net/http"
	"strings"
	"testing"
)

func clusterYAML(name string, replicas int, mem string) string {
	return "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata:\n  name: " + name +
		"\nspec:\n  replicas: " + string(rune('0'+replicas)) + "\n  resources: {cpus: 1, mem: " + mem + ", disk: 1Gi}\n"
}

// TestQuotaRefusesWhatExceedsIt: creates and updates that would take a
// namespace past its quota are refused with 403 naming the limit and the
// way out, nothing stored changes, and shrinking is always allowed.
func TestQuotaRefusesWhatExceedsIt(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	const ns = "/api/v1/namespaces/team-a"
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":4,"mem":"4Gi"}}`, bearer(teamToken)); code != http.StatusForbidden {
		t.Fatalf("a team admin raises its own quota: %d %s; want 403", code, body)
	}
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":4,"mem":"4Gi"}}`); code != http.StatusOK {
		t.Fatalf("set quota: %d %s", code, body)
	}
	for bad, want := range map[string]string{
		`{"hard":{"instances":-1}}`:             "hard.instances",
		`{"hard":{"mem":"lots"}}`:               "hard.mem",
		`{"hard":{"cpus":1},"used":{"cpus":1}}`: "used",
		`{"hard":{"memory":"1Gi"}}`:             "memory",
		`{"namespace":"team-b","hard":{}}`:      "does not match",
	} {
		if code, body := a.do("PUT", ns+"/quota", "application/json", bad); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("quota %s: %d %s; want 400 naming %q", bad, code, body, want)
		}
	}
	if code, body := a.do("POST", ns+"/clusters", "application/yaml", clusterYAML("one", 3, "1Gi"), bearer(teamToken)); code != http.StatusCreated {
		t.Fatalf("create within quota: %d %s", code, body)
	}
	before := dumpEtcd(t, a.etcd)
	code, body := a.do("POST", ns+"/clusters", "application/yaml", clusterYAML("two", 2, "512Mi"), bearer(teamToken))
	if code != http.StatusForbidden || !strings.Contains(body, "instances: 5 would be in use, the limit is 4") ||
		!strings.Contains(body, "mysosctl quota set team-a") {
		t.Fatalf("create beyond instances: %d %s; want 403 naming the limit and the way out", code, body)
	}
	code, body = a.do("PUT", ns+"/clusters/one", "application/yaml", clusterYAML("one", 3, "2Gi"), bearer(teamToken))
	if code != http.StatusForbidden || !strings.Contains(body, "mem: 6Gi would be in use, the limit is 4Gi") {
		t.Fatalf("grow memory beyond the quota: %d %s; want 403", code, body)
	}
	if after := dumpEtcd(t, a.etcd); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("a refused request changed what is stored")
	}
	if code, body := a.do("GET", ns+"/quota", "", "", bearer(teamReaderToken)); code != http.StatusOK ||
		!strings.Contains(body, `"instances": 3`) || !strings.Contains(body, `"mem": "3Gi"`) {
		t.Fatalf("read quota with usage: %d %s", code, body)
	}
	// Lowering the quota below use does not block shrinking.
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":1}}`); code != http.StatusOK {
		t.Fatalf("lower quota: %d %s", code, body)
	}
	if code, body := a.do("PUT", ns+"/clusters/one", "application/yaml", clusterYAML("one", 2, "1Gi"), bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("shrink while over quota: %d %s; want allowed", code, body)
	}
	if code, body := a.do("POST", "/api/v1/namespaces/team-b/clusters", "application/yaml", clusterYAML("big", 5, "8Gi")); code != http.StatusCreated {
		t.Fatalf("a namespace without a quota: %d %s", code, body)
	}
	if code, body := a.do("DELETE", ns+"/quota", "", ""); code != http.StatusOK {
		t.Fatalf("delete quota: %d %s", code, body)
	}
	if code, _ := a.do("GET", ns+"/quota", "", ""); code != http.StatusNotFound {
		t.Fatalf("deleted quota: %d; want 404", code)
	}
}
