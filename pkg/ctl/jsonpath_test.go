package ctl

import "testing"

func TestJSONPath(t *testing.T) {
	doc := map[string]any{"status": map[string]any{"phase": "Running", "endpoints": map[string]any{"replicas": []string{"h1:1", "h2:2"}}, "n": 3}}
	for expr, want := range map[string]string{
		"{.status.phase}":               "Running",
		".status.endpoints.replicas[1]": "h2:2",
		"{.status.endpoints.replicas}":  `["h1:1","h2:2"]`,
		"{.status.n}":                   "3",
	} {
		got, err := jsonPath(doc, expr)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", expr, got, err, want)
		}
	}
	for _, bad := range []string{"{status}", "{.status.nope}", "{.status.endpoints.replicas[5]}", "{.status.phase[0]}"} {
		if _, err := jsonPath(doc, bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
