package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormatsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := build(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("reconcile", "cluster", "default/shop", "operation", "failover-1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["cluster"] != "default/shop" || line["msg"] != "reconcile" {
		t.Fatalf("json line %q (%v)", buf.String(), err)
	}
	buf.Reset()
	if log, err = build(&buf, "debug", "text"); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown", "k", "v")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown k=v") {
		t.Fatalf("text line %q", buf.String())
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := build(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("level %q format %q accepted", bad[0], bad[1])
		}
	}
}
