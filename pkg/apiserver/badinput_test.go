package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"unicode"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// The bad-input corpus: every file of testdata/badinput is one request that
// must be refused with a 4xx whose message names the problem, and that must
// change nothing stored. A file starts with header lines "#> key: value";
// the rest of it, byte for byte, is the request body:
//
//	#> method: PUT                      (required)
//	#> path: /api/v1/namespaces/...     (required; the stored cluster is default/shop)
//	#> type: application/json           (Content-Type; default from the file's extension, "none" for no header)
//	#> code: 400                        (required, 4xx)
//	#> reason: Invalid                  (the Status reason)
//	#> says: spec.replicas              (the message contains it; repeatable)
//	#> field: spec.replicas             (a cause names this field; repeatable)
//	#> template: true                   (the body is a text/template: {{repeat "x" 70000}}, {{"\u202e"}})
//
// Header lines are comments in YAML, so a YAML case reads as the manifest
// a user would send. Creates name a cluster of their own (new-NNN), so that
// a create that slips through answers 201 rather than 409.

const badInputDir = "testdata/badinput"

// storedYAML is the cluster every case runs against: PUT cases replace it,
// switchover cases find it Ready with three instances.
const storedYAML = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: shop
  labels: {team: shop}
spec:
  replicas: 3
  resources: {cpus: 500m, mem: 512Mi, disk: 2Gi}
  mysqlConfig: {max_connections: "200", slow_query_log: "ON"}
  users:
    - name: app
      databases: [shop]
      privileges: [SELECT, INSERT, UPDATE, DELETE]
  backup:
    schedule: "0 3 * * *"
`

type badCase struct {
	file                      string
	method, path, contentType string
	code                      int
	reason                    string
	says, fields              []string
	body                      []byte
}

func (c badCase) String() string {
	return fmt.Sprintf("%s %s (%s)", c.method, c.path, c.file)
}

var badTemplateFuncs = template.FuncMap{"repeat": func(s string, n int) string { return strings.Repeat(s, n) }}

// loadBadCases reads and checks every case file.
func loadBadCases(t testing.TB) []badCase {
	t.Helper()
	var cases []badCase
	err := filepath.WalkDir(badInputDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		c, err := parseBadCase(filepath.Base(path), raw)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cases = append(cases, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 60 {
		t.Fatalf("%s holds %d cases; the corpus is meant to have at least 60", badInputDir, len(cases))
	}
	return cases
}

func parseBadCase(file string, raw []byte) (badCase, error) {
	c := badCase{file: file}
	switch filepath.Ext(file) {
	case ".yaml":
		c.contentType = "application/yaml"
	case ".json":
		c.contentType = "application/json"
	}
	templated := false
	rest := raw
	for bytes.HasPrefix(rest, []byte("#>")) {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		rest = after
		key, value, ok := strings.Cut(strings.TrimSpace(string(line[2:])), ":")
		if !ok {
			return c, fmt.Errorf("header line %q is not \"#> key: value\"", line)
		}
		value = strings.TrimSpace(value)
		switch key {
		case "method":
			c.method = value
		case "path":
			c.path = value
		case "type":
			c.contentType = value
			if value == "none" {
				c.contentType = ""
			}
		case "code":
			n, err := strconv.Atoi(value)
			if err != nil {
				return c, fmt.Errorf("code %q: %v", value, err)
			}
			c.code = n
		case "reason":
			c.reason = value
		case "says":
			c.says = append(c.says, value)
		case "field":
			c.fields = append(c.fields, value)
		case "template":
			templated = value == "true"
		default:
			return c, fmt.Errorf("unknown header %q", key)
		}
	}
	c.body = rest
	if templated {
		tmpl, err := template.New(file).Funcs(badTemplateFuncs).Parse(string(rest))
		if err != nil {
			return c, err
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, nil); err != nil {
			return c, err
		}
		c.body = b.Bytes()
	}
	switch {
	case c.method == "" || c.path == "":
		return c, fmt.Errorf("method and path are required")
	case c.code < 400 || c.code > 499:
		return c, fmt.Errorf("code %d: a bad input must be answered with a 4xx", c.code)
	case len(c.says) == 0 && len(c.fields) == 0:
		return c, fmt.Errorf("say what the message must name (says: or field:)")
	}
	return c, nil
}

// etcdSnapshot is every key under the store's prefix with its value and
// revisions, and the store's revision: any write changes it.
func etcdSnapshot(t *testing.T, a *apiTest) string {
	t.Helper()
	resp, err := a.store.Client().Get(context.Background(), a.store.Prefix()+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d\n", resp.Header.Revision)
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&b, "%q create=%d mod=%d version=%d lease=%d\n%q\n", kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value)
	}
	return b.String()
}

// dirSnapshot lists the files of the backup destination with their contents.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v\n", path, d.Type())
		if d.Type().IsRegular() {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%q\n", raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBadInputCorpus sends every case of testdata/badinput against a stored,
// Ready cluster and checks the answer, then that etcd and the backup
// destination are exactly as before.
func TestBadInputCorpus(t *testing.T) {
	cases := loadBadCases(t)
	a := newAPI(t)
	a.create(storedYAML)
	a.setStatus(makeReady)
	before, beforeDir := etcdSnapshot(t, a), dirSnapshot(t, strings.TrimPrefix(a.backups, "file://"))
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.file, filepath.Ext(c.file)), func(t *testing.T) {
			code, body := a.do(c.method, c.path, c.contentType, string(c.body))
			if code != c.code {
				t.Errorf("%s: got %d %s; want %d", c, code, shorten(body), c.code)
			}
			st, err := statusOf(code, []byte(body))
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if c.reason != "" && st.Reason != c.reason {
				t.Errorf("%s: reason %q, want %q: %s", c, st.Reason, c.reason, shorten(st.Message))
			}
			for _, s := range c.says {
				if !strings.Contains(st.Message, s) {
					t.Errorf("%s: the message does not say %q: %s", c, s, shorten(st.Message))
				}
			}
			for _, f := range c.fields {
				if !hasCause(st, f) {
					t.Errorf("%s: no cause names %s: %s", c, f, shorten(st.Message))
				}
			}
			// A change is reported once, against the case that made it.
			if after := etcdSnapshot(t, a); after != before {
				t.Errorf("%s changed what etcd holds:\nbefore:\n%s\nafter:\n%s", c, before, after)
				before = after
			}
			if after := dirSnapshot(t, strings.TrimPrefix(a.backups, "file://")); after != beforeDir {
				t.Errorf("%s changed the backup destination:\nbefore:\n%s\nafter:\n%s", c, beforeDir, after)
				beforeDir = after
			}
		})
	}
}

// statusOf decodes an error answer: a Failure Status carrying the HTTP
// code and a message.
func statusOf(code int, body []byte) (spec.Status, error) {
	var st spec.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("the answer is not a JSON Status (%v): %s", err, shorten(string(body)))
	}
	switch {
	case st.Kind != "Status" || st.APIVersion != "v1" || st.Status != "Failure":
		return st, fmt.Errorf("the answer is not a Failure Status: %s", shorten(string(body)))
	case st.Code != code:
		return st, fmt.Errorf("the Status says code %d, the answer was %d", st.Code, code)
	case st.Reason == "":
		return st, fmt.Errorf("the Status has no reason: %s", shorten(string(body)))
	case strings.TrimSpace(st.Message) == "":
		return st, fmt.Errorf("the Status has no message: %s", shorten(string(body)))
	case unprintable(st.Message):
		return st, fmt.Errorf("the message would print a control or invisible character to the user's terminal: %q", shorten(st.Message))
	}
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if unprintable(c.Field) || unprintable(c.Message) {
				return st, fmt.Errorf("a cause would print a control or invisible character to the user's terminal: %q: %q", shorten(c.Field), shorten(c.Message))
			}
		}
	}
	return st, nil
}

// unprintable reports what a client must not print as it is: control
// characters other than newlines (terminal escapes among them) and
// invisible formatting characters (U+202E reverses the text after it).
func unprintable(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Cf, r) })
}

// TestBadInputCorpusFiles keeps the corpus tidy: names are NN-words with the
// extension of the body's format, and every number is used once.
func TestBadInputCorpusFiles(t *testing.T) {
	cases := loadBadCases(t)
	seen := map[string]string{}
	for _, c := range cases {
		num, _, ok := strings.Cut(c.file, "-")
		if _, err := strconv.Atoi(num); !ok || err != nil {
			t.Errorf("%s: name it NN-what-it-is.ext", c.file)
		}
		if other, dup := seen[num]; dup {
			t.Errorf("%s and %s share the number %s", c.file, other, num)
		}
		seen[num] = c.file
		if !slices.Contains([]string{".yaml", ".json", ".txt"}, filepath.Ext(c.file)) {
			t.Errorf("%s: use .yaml, .json or .txt", c.file)
		}
	}
	// Each case file is read line by line by people too: no file may hide
	// a NUL or a carriage return; write them with {{"\x00"}} in a template.
	for _, c := range cases {
		raw, _ := os.ReadFile(filepath.Join(badInputDir, c.file))
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			if bytes.ContainsAny(sc.Bytes(), "\x00\r") {
				t.Errorf("%s:%d holds a NUL or CR byte; write it as {{\"\\x00\"}} with template: true", c.file, n)
			}
		}
	}
}

func shorten(s string) string {
	if len(s) > 600 {
		return s[:600] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// TestBackupReadsCreateNothing: a destination named in a query or a
// restore section is only read from, so one that does not exist is not
// created on the scheduler's host, whatever the answer.
func TestBackupReadsCreateNothing(t *testing.T) {
	a := newAPI(t)
	a.create(storedYAML)
	missing := filepath.Join(t.TempDir(), "not", "there")
	q := "?destination=" + url.QueryEscape("file://"+missing)
	if code, body := a.do("GET", backupsPath+q, "", ""); code != http.StatusOK || !strings.Contains(body, `"items": null`) && !strings.Contains(body, `"items": []`) {
		t.Errorf("list from a missing destination: %d %s; want 200 and no backups", code, shorten(body))
	}
	a.expectStatus("GET", backupsPath+"/20240101T000000Z"+q, "", "", http.StatusNotFound, spec.ReasonNotFound, "has no backup")
	restore := strings.Replace(validYAML, "name: shop", "name: copy", 1) +
		"  restore: {from: shop/20240101T000000Z, destination: \"file://" + missing + "\"}\n"
	if st := a.expectStatus("POST", clustersPath, "application/yaml", restore, http.StatusBadRequest, spec.ReasonInvalid, missing); !hasCause(st, "spec.restore.from") {
		t.Errorf("no cause names spec.restore.from: %s", st.Message)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading from %s created it (%v)", missing, err)
	}
}

// TestCreateIgnoresServerOwnedFields: uid, generation, timestamps,
// finalizers and status in a create body are the server's, so they are
// ignored, as documented, rather than stored.
func TestCreateIgnoresServerOwnedFields(t *testing.T) {
	a := newAPI(t)
	body := strings.Replace(storedYAML, "  labels: {team: shop}\n", "  labels: {team: shop}\n  uid: mine\n  generation: 9\n"+
		"  finalizers: [example.com/never]\n  creationTimestamp: \"2020-01-01T00:00:00Z\"\n  deletionTimestamp: \"2020-01-01T00:00:00Z\"\n", 1) +
		"status:\n  currentPrimary: shop-9\n  errantInstances: [shop-0]\n"
	created := a.create(body)
	stored, err := a.store.Get(context.Background(), "default", "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []spec.MySQLCluster{created, *stored} {
		m := c.Metadata
		if m.UID == "mine" || m.Generation != 1 || len(m.Finalizers) > 0 || m.DeletionTimestamp != nil || m.CreationTimestamp.Year() == 2020 ||
			c.Status.CurrentPrimary != "" || len(c.Status.ErrantInstances) > 0 {
			t.Fatalf("a server-owned field came from the body: %+v %+v", m, c.Status)
		}
	}
}
