package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// The original Mysos' REST API (mysos/scheduler/http.py), kept so that its
// clients and its end-to-end flow run unchanged: POST /clusters/<name>
// creates a cluster from form fields, DELETE /clusters/<name> deletes it
// given its password. Both map onto MySQLCluster specs in the default
// namespace. Like the original they take no bearer token (the cluster
// password guards DELETE), which is why the scheduler serves them only with
// --legacy-api.

// LegacyStore is what the legacy endpoints need beyond ClusterStore.
type LegacyStore interface {
	CreateWithPasswords(ctx context.Context, c *spec.MySQLCluster, pw map[string]string, conds ...store.Unchanged) (*spec.MySQLCluster, error)
	Passwords(ctx context.Context, ns, name, uid string) (map[string]string, error)
}

// LegacyUserAnnotation records which account a legacy cluster was created
// for: its password is the cluster password.
const LegacyUserAnnotation = "mysos.io/legacy-cluster-user"

// Defaults of the original API.
const (
	legacyDefaultSize = `{"cpus":1.0,"mem":"512mb","disk":"2gb"}`
)

func (s *Server) legacyRoutes() []Route {
	return []Route{
		{Pattern: "POST /clusters/{name}", Access: AccessLegacy, handler: s.legacyCreate},
		{Pattern: "DELETE /clusters/{name}", Access: AccessLegacy, handler: s.legacyDelete},
	}
}

func (s *Server) legacyCreate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !parseLegacyForm(w, r) {
		return
	}
	defer removeUploads(r)
	c, password, err := legacyCluster(name, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	user := c.Metadata.Annotations[LegacyUserAnnotation]
	created, err := s.cfg.Legacy.CreateWithPasswords(r.Context(), c, map[string]string{user: password})
	if err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			http.Error(w, fmt.Sprintf("Cluster '%s' already exists", name), http.StatusConflict)
			return
		}
		s.legacyStoreError(w, err)
		return
	}
	s.log.Info("cluster created through the legacy API", "cluster", created.Key(), "uid", created.Metadata.UID)
	writeJSON(w, http.StatusOK, map[string]string{"cluster_url": s.legacyClusterURL(name), "cluster_password": password})
}

// legacyCluster turns the original form fields into a defaulted, valid spec.
func legacyCluster(name string, r *http.Request) (*spec.MySQLCluster, string, error) {
	user := r.FormValue("cluster_user")
	if user == "" {
		return nil, "", errors.New("Invalid user name: None")
	}
	nodes := int64(1)
	if v := r.FormValue("num_nodes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n <= 0 {
			return nil, "", fmt.Errorf("Invalid number of cluster nodes: %s", v)
		}
		nodes = n
	}
	size := r.FormValue("size")
	if size == "" {
		size = legacyDefaultSize
	}
	res, err := legacySize(size)
	if err != nil {
		return nil, "", err
	}
	if r.FormValue("backup_id") != "" {
		return nil, "", errors.New("backup_id: restoring from a backup is not supported yet (see spec.restore)")
	}
	password := r.FormValue("cluster_password")
	if password == "" {
		password = store.NewPassword()
	}
	replicas := int32(nodes)
	c := &spec.MySQLCluster{
		APIVersion: spec.APIVersion, Kind: spec.Kind,
		Metadata: spec.ObjectMeta{Name: name, Namespace: spec.DefaultNamespace,
			Annotations: map[string]string{LegacyUserAnnotation: user}},
		Spec: spec.ClusterSpec{Replicas: &replicas, Resources: res,
			Users: []spec.User{{Name: user, Host: "%", Databases: []string{"*"}, Privileges: []string{"ALL"}}}},
	}
	spec.SetDefaults(c)
	if err := spec.Validate(c); err != nil {
		return nil, "", err
	}
	return c, password, nil
}

// legacySize parses {"cpus": 1.0, "mem": "512mb", "disk": "2gb"}: sizes are
// an integer and a unit k|kb|m|mb|g|gb|t|tb (binary multiples), bytes when
// bare, as twitter.common's parse_data reads them.
func legacySize(raw string) (spec.Resources, error) {
	bad := errors.New("'size' should be a JSON dictionary with keys 'cpus', 'mem' and 'disk'")
	var sz struct {
		CPUs *float64 `json:"cpus"`
		Mem  *string  `json:"mem"`
		Disk *string  `json:"disk"`
	}
	if err := json.Unmarshal([]byte(raw), &sz); err != nil || sz.CPUs == nil || sz.Mem == nil || sz.Disk == nil {
		return spec.Resources{}, bad
	}
	mem, err := legacyData(*sz.Mem)
	if err != nil {
		return spec.Resources{}, err
	}
	disk, err := legacyData(*sz.Disk)
	if err != nil {
		return spec.Resources{}, err
	}
	return spec.Resources{
		CPUs:   spec.Quantity(strconv.FormatInt(int64(*sz.CPUs*1000+0.5), 10) + "m"),
		Memory: mem, Disk: disk,
	}, nil
}

var legacyDataRE = regexp.MustCompile(`^(?i)\s*(\d+)\s*(k|kb|m|mb|g|gb|t|tb)?\s*$`)

func legacyData(s string) (spec.Quantity, error) {
	m := legacyDataRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("invalid data size %q: an integer and a unit such as 512mb or 2gb", s)
	}
	suffix := map[string]string{"": "", "k": "Ki", "kb": "Ki", "m": "Mi", "mb": "Mi", "g": "Gi", "gb": "Gi", "t": "Ti", "tb": "Ti"}[strings.ToLower(m[2])]
	return spec.Quantity(m[1] + suffix), nil
}

func (s *Server) legacyDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// The original read DELETE's form body too; net/http parses bodies of
	// POST, PUT and PATCH only, so parse it as a POST's.
	r = r.Clone(r.Context())
	r.Method = http.MethodPost
	if !parseLegacyForm(w, r) {
		return
	}
	defer removeUploads(r)
	if !spec.IsDNSLabel(name) {
		http.Error(w, fmt.Sprintf("Cluster %s not found", quoteName(name)), http.StatusNotFound)
		return
	}
	c, err := s.cfg.Store.Get(r.Context(), spec.DefaultNamespace, name)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, fmt.Sprintf("Cluster '%s' not found", name), http.StatusNotFound)
		return
	}
	if err != nil {
		s.legacyStoreError(w, err)
		return
	}
	user := c.Metadata.Annotations[LegacyUserAnnotation]
	pw, err := s.cfg.Legacy.Passwords(r.Context(), spec.DefaultNamespace, name, c.Metadata.UID)
	if err != nil {
		s.legacyStoreError(w, err)
		return
	}
	given := r.FormValue("password")
	if user == "" || pw[user] == "" || subtle.ConstantTimeCompare([]byte(given), []byte(pw[user])) != 1 {
		http.Error(w, fmt.Sprintf("No permission to kill cluster %s", name), http.StatusForbidden)
		return
	}
	if _, _, err := s.cfg.Store.Delete(r.Context(), spec.DefaultNamespace, name, ""); err != nil {
		s.legacyStoreError(w, err)
		return
	}
	s.log.Info("cluster deletion requested through the legacy API", "cluster", spec.DefaultNamespace+"/"+name)
	writeJSON(w, http.StatusOK, map[string]string{"cluster_url": s.legacyClusterURL(name)})
}

// parseLegacyForm reads the form (urlencoded or multipart) of a body of at
// most MaxBodyBytes, answering 413 or 400 itself when it cannot.
func parseLegacyForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	err := r.ParseMultipartForm(64 << 10)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil || errors.Is(err, http.ErrNotMultipart):
		return true
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
	default:
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
	}
	return false
}

// removeUploads deletes the files a multipart form spilled to disk: net/http
// cleans up only after the request it was given, not a clone of it.
func removeUploads(r *http.Request) {
	if r.MultipartForm != nil {
		_ = r.MultipartForm.RemoveAll()
	}
}

// legacyStoreError answers a storage failure in the original API's plain
// text: 503, since the request may succeed when etcd answers again.
func (s *Server) legacyStoreError(w http.ResponseWriter, err error) {
	s.log.Error("storage request failed", "err", err)
	http.Error(w, "the store (etcd) did not answer; retry", http.StatusServiceUnavailable)
}

// legacyClusterURL names where the cluster's endpoints are discovered: its
// object in this API (status.endpoints), where the original named a
// ZooKeeper path.
func (s *Server) legacyClusterURL(name string) string {
	return strings.TrimSuffix(s.cfg.ExternalURL, "/") + "/api/v1/namespaces/" + spec.DefaultNamespace + "/clusters/" + name
}
