package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

// The API starts operations by writing status.operation; the reconciler
// carries them out step by step and records events on the way. Writing the
// request into the status (rather than acting here) means a scheduler that
// dies midway resumes it, and that the API and the reconciler never act on
// MySQL at the same time.

// StatusStore writes cluster status (pkg/store implements it). The store
// re-reads and retries mutate when another status write races it, so the
// rules below are checked against the status that is actually written.
type StatusStore interface {
	UpdateStatus(ctx context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error)
}

// refusal is a request the cluster's state or the body does not allow; it
// is answered as a Status, never stored.
type refusal struct {
	code   int
	reason string
	msg    string
	// field is the body field at fault, for Invalid refusals.
	field string
}

func (r *refusal) Error() string { return r.msg }

func conflict(format string, args ...any) *refusal {
	return &refusal{code: http.StatusConflict, reason: spec.ReasonConflict, msg: fmt.Sprintf(format, args...)}
}

func invalidField(field, value, detail string) *refusal {
	e := &spec.FieldError{Field: field, Type: spec.ErrorTypeInvalid, Value: strconv.Quote(value), Detail: detail}
	return &refusal{code: http.StatusBadRequest, reason: spec.ReasonInvalid, msg: e.Error(), field: field}
}

func writeRefusal(w http.ResponseWriter, ns, name string, r *refusal) {
	details := &spec.StatusDetails{Name: name, Namespace: ns}
	if r.field != "" {
		details.Causes = []spec.StatusCause{{Field: r.field, Message: r.msg}}
	}
	writeStatus(w, r.code, r.reason, r.msg, details)
}

// checkSwitchover says why a switchover to `to` ("" lets Mysos choose)
// cannot start on a cluster with this metadata and status, or returns nil.
func checkSwitchover(meta spec.ObjectMeta, st *spec.ClusterStatus, to string) error {
	key := meta.Namespace + "/" + meta.Name
	if meta.DeletionTimestamp != nil {
		return conflict("cluster %s is being deleted; no switchover can start", key)
	}
	if op := st.Operation; op != nil {
		return conflict("cluster %s already has a %s in progress (id %s, step %s); watch it with: %s",
			key, op.Kind, op.ID, op.Step, eventsCommand(meta))
	}
	if st.CurrentPrimary == "" {
		return conflict("cluster %s has no primary yet; a switchover needs one to hand over from", key)
	}
	if err := checkReady(key, st); err != nil {
		return err
	}
	names := make([]string, len(st.Instances))
	for i, inst := range st.Instances {
		names[i] = inst.Name
	}
	if to == "" {
		return checkSomeReplica(key, st, names)
	}
	switch {
	case !slices.Contains(names, to):
		return invalidField("to", to, fmt.Sprintf("is not an instance of cluster %s; its instances are %s", key, strings.Join(names, ", ")))
	case to == st.CurrentPrimary:
		return invalidField("to", to, "is already the primary; name a replica, or leave to empty for the most up-to-date one")
	case slices.Contains(st.ErrantInstances, to):
		return invalidField("to", to, "holds transactions the primary lacks (status.errantInstances) and is never promoted until re-seeded")
	}
	return nil
}

// checkSomeReplica refuses a switchover without a target on a cluster with
// no instance that could take over (a single instance, or errant replicas
// only), which the reconciler would only abort.
func checkSomeReplica(key string, st *spec.ClusterStatus, names []string) error {
	for _, n := range names {
		if n != st.CurrentPrimary && !slices.Contains(st.ErrantInstances, n) {
			return nil
		}
	}
	return conflict("cluster %s has no replica that could become the primary", key)
}

// checkReady refuses a cluster whose Ready condition is not True: a
// switchover on a cluster already short of healthy replicas could leave it
// without a primary.
func checkReady(key string, st *spec.ClusterStatus) error {
	ready := st.FindCondition(spec.ConditionReady)
	if ready == nil {
		return conflict("cluster %s is not Ready (no Ready condition yet); a switchover needs every instance running and replicating", key)
	}
	if ready.Status != spec.ConditionTrue {
		return conflict("cluster %s is not Ready (Ready=%s: %q); a switchover needs every instance running and replicating",
			key, ready.Status, ready.Message)
	}
	return nil
}

// eventsCommand is the mysosctl command that shows a cluster's events.
func eventsCommand(meta spec.ObjectMeta) string {
	cmd := "mysosctl events " + meta.Name
	if meta.Namespace != spec.DefaultNamespace && meta.Namespace != "" {
		cmd += " -n " + meta.Namespace
	}
	return cmd
}

// newSwitchover is the operation a switchover request records.
func newSwitchover(st *spec.ClusterStatus, to string, now time.Time) spec.Operation {
	return spec.Operation{
		ID: switchoverID(st, now), Kind: spec.OperationSwitchover,
		From: st.CurrentPrimary, To: to, Step: spec.StepRequested,
		Reason: "requested through the API", StartedAt: now,
	}
}

// switchoverID names an operation by its start, to the millisecond; ids
// are unique per cluster since one operation runs at a time, and the
// nanoseconds are added in the unlikely case that the last one known
// started within the same millisecond.
func switchoverID(st *spec.ClusterStatus, now time.Time) string {
	id := "switchover-" + strings.ReplaceAll(now.UTC().Format("20060102T150405.000Z"), ".", "")
	if (st.Operation != nil && st.Operation.ID == id) || (st.LastFailover != nil && st.LastFailover.ID == id) {
		id = "switchover-" + strings.ReplaceAll(now.UTC().Format("20060102T150405.000000000Z"), ".", "")
	}
	return id
}

// switchover starts a switchover: 202 with the recorded operation.
func (s *Server) switchover(w http.ResponseWriter, r *http.Request) {
	if !checkNamespace(w, r.PathValue("namespace")) || !checkName(w, r.PathValue("name")) || !s.writesStatus(w) {
		return
	}
	req, ok := readSwitchoverRequest(w, r)
	if !ok {
		return
	}
	var op spec.Operation
	c, ok := s.changeStatus(w, r, func(c *spec.MySQLCluster, st *spec.ClusterStatus) error {
		if err := checkSwitchover(c.Metadata, st, req.To); err != nil {
			return err
		}
		op = newSwitchover(st, req.To, time.Now().UTC())
		st.Operation = &op
		return nil
	})
	if !ok {
		return
	}
	s.log.Info("switchover requested", "cluster", c.Key(), "operation", op.ID, "from", op.From, "to", op.To)
	writeJSON(w, http.StatusAccepted, op)
}

// ackFailover acknowledges the last automatic failover, lifting its block
// window: 200 with the record.
func (s *Server) ackFailover(w http.ResponseWriter, r *http.Request) {
	if !checkNamespace(w, r.PathValue("namespace")) || !checkName(w, r.PathValue("name")) || !readNoBody(w, r) {
		return
	}
	var rec spec.FailoverRecord
	c, ok := s.changeStatus(w, r, func(c *spec.MySQLCluster, st *spec.ClusterStatus) error {
		if st.LastFailover == nil {
			return conflict("cluster %s has had no automatic failover to acknowledge", c.Key())
		}
		st.LastFailover.Acknowledged = true
		rec = *st.LastFailover
		return nil
	})
	if !ok {
		return
	}
	s.log.Info("failover acknowledged", "cluster", c.Key(), "operation", rec.ID, "from", rec.From, "to", rec.To)
	writeJSON(w, http.StatusOK, rec)
}

// changeStatus applies a user's request to a cluster's status (compare and
// swap), answering the refusal or storage error itself; ok is false then.
func (s *Server) changeStatus(w http.ResponseWriter, r *http.Request, change func(*spec.MySQLCluster, *spec.ClusterStatus) error) (*spec.MySQLCluster, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) || !s.writesStatus(w) {
		return nil, false
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return nil, false
	}
	_, err = s.cfg.Status.UpdateStatus(r.Context(), ns, name, c.Metadata.UID, func(st *spec.ClusterStatus) error { return change(c, st) })
	if err != nil {
		s.writeOperationError(w, ns, name, err)
		return nil, false
	}
	return c, true
}

// reseed asks for an errant instance to be re-seeded: its task is killed,
// its volume destroyed, and the ordinal starts afresh from a copy of the
// primary. 202 with the instance name.
func (s *Server) reseed(w http.ResponseWriter, r *http.Request) {
	if !checkNamespace(w, r.PathValue("namespace")) || !checkName(w, r.PathValue("name")) || !readNoBody(w, r) {
		return
	}
	instance := r.PathValue("instance")
	c, ok := s.changeStatus(w, r, func(c *spec.MySQLCluster, st *spec.ClusterStatus) error {
		return requestReseed(c.Metadata, st, instance)
	})
	if !ok {
		return
	}
	s.log.Info("re-seed requested", "cluster", c.Key(), "instance", instance)
	writeJSON(w, http.StatusAccepted, map[string]string{"instance": instance})
}

// requestReseed adds instance to status.reseedRequested. Only an errant
// instance is re-seeded: its extra transactions were never acknowledged,
// whereas a healthy instance's data is the cluster's.
func requestReseed(meta spec.ObjectMeta, st *spec.ClusterStatus, instance string) error {
	key := meta.Namespace + "/" + meta.Name
	switch {
	case meta.DeletionTimestamp != nil:
		return conflict("cluster %s is being deleted", key)
	case !slices.Contains(st.ErrantInstances, instance):
		return conflict("instance %s of %s is not errant (status.errantInstances: %v); only an instance holding transactions the primary lacks is re-seeded", spec.QuoteValue(instance), key, st.ErrantInstances)
	case slices.Contains(st.ReseedRequested, instance):
		return nil
	}
	st.ReseedRequested = append(st.ReseedRequested, instance)
	return nil
}

func (s *Server) writesStatus(w http.ResponseWriter) bool {
	if s.cfg.Status != nil {
		return true
	}
	writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "this server does not start operations", nil)
	return false
}

func (s *Server) writeOperationError(w http.ResponseWriter, ns, name string, err error) {
	var ref *refusal
	if errors.As(err, &ref) {
		writeRefusal(w, ns, name, ref)
		return
	}
	s.writeStoreError(w, err)
}

// readNoBody makes sure a request that takes no body came without one (an
// empty object or null count as none): whatever a client put there would
// otherwise be ignored without a word.
func readNoBody(w http.ResponseWriter, r *http.Request) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	obj, err := spec.DecodeObject(body)
	if err == nil && len(obj) == 0 {
		return true
	}
	found := fmt.Sprintf("%d bytes", len(body))
	if len(obj) > 0 {
		found = "the fields " + strings.Join(slices.Sorted(maps.Keys(obj)), ", ")
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
		fmt.Sprintf("%s %s takes no body, and this one has %s; send the request without one", r.Method, r.URL.Path, found), nil)
	return false
}

// readSwitchoverRequest reads the optional body. It is checked field by
// field rather than decoded strictly so that an unknown or mistyped field
// is named in the answer, as for cluster bodies.
func readSwitchoverRequest(w http.ResponseWriter, r *http.Request) (spec.SwitchoverRequest, bool) {
	var req spec.SwitchoverRequest
	body, ok := readBody(w, r)
	switch {
	case !ok:
		return req, false
	case len(strings.TrimSpace(string(body))) == 0:
		return req, true
	case !acceptableContentType(r.Header.Get("Content-Type")):
		writeStatus(w, http.StatusUnsupportedMediaType, spec.ReasonUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q: send application/json or application/yaml", r.Header.Get("Content-Type")), nil)
		return req, false
	}
	req, err := decodeSwitchoverRequest(body)
	if err != nil {
		writeDecodeError(w, err)
		return req, false
	}
	return req, true
}

// decodeSwitchoverRequest reads {"to": "<instance>"} from JSON or YAML, as
// strictly as a cluster (one document, no duplicate keys); an empty object
// or null asks for no particular target.
func decodeSwitchoverRequest(body []byte) (spec.SwitchoverRequest, error) {
	var req spec.SwitchoverRequest
	fields, err := spec.DecodeObject(body)
	if err != nil {
		return req, fmt.Errorf(`a switchover body is one object, {"to": "<instance>"} or {}: %w`, err)
	}
	var errs spec.ErrorList
	for k, v := range fields {
		switch to, isString := v.(string); {
		case k != "to":
			errs = append(errs, &spec.FieldError{Field: k, Type: spec.ErrorTypeUnknown, Detail: `a switchover body has only "to"`})
		case !isString && v != nil:
			errs = append(errs, &spec.FieldError{Field: k, Type: spec.ErrorTypeWrongType, Value: string(mustJSON(v)), Detail: "must be a string: an instance name"})
		default:
			req.To = to
		}
	}
	slices.SortFunc(errs, func(a, b *spec.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return req, errs.Err()
}

func mustJSON(v any) []byte {
	raw, _ := json.Marshal(v)
	return raw
}
