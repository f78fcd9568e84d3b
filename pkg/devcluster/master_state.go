package devcluster

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// serveVersion answers GET /version like Mesos.
func (m *Master) serveVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"build_date": m.start.UTC().Format("2006-01-02 15:04:05"),
		"build_time": float64(m.start.Unix()),
		"build_user": "",
		"version":    m.cfg.Version,
	})
}

// serveState answers /state and /master/state with a subset of Mesos' JSON
// view, for debugging.
func (m *Master) serveState(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			return json.RawMessage("null")
		}
		return b
	}
	var slaves []map[string]any
	ids := slices.Sorted(maps.Keys(m.agents))
	for _, id := range ids {
		a := m.agents[id]
		free := m.freeResources(a)
		slaves = append(slaves, map[string]any{
			"id":                   a.id,
			"hostname":             a.info.Hostname,
			"port":                 a.info.GetPort(),
			"attributes":           raw(a.info.Attributes),
			"registered_time":      unixSeconds(a.registered),
			"reregistered_time":    unixSeconds(a.reregistered),
			"active":               true,
			"resources_full":       raw(a.total),
			"unallocated_full":     raw(free),
			"checkpointed_full":    raw(a.checkpointed()),
			"version":              m.cfg.Version,
			"unreserved_resources": resourcesSummary(unreservedOnly(a.total)),
			"resources":            resourcesSummary(a.total),
		})
	}
	fwState := func(fw *mframework) map[string]any {
		var tasks, unreachable, completed []json.RawMessage
		tids := slices.Sorted(maps.Keys(fw.tasks))
		for _, tid := range tids {
			t := fw.tasks[tid]
			view := t.t
			if t.status != nil {
				view.Statuses = []mesos.TaskStatus{*t.status}
			}
			switch {
			case t.state() == mesos.TASK_UNREACHABLE:
				unreachable = append(unreachable, raw(view))
			case isTerminal(t.state()):
				completed = append(completed, raw(view))
			default:
				tasks = append(tasks, raw(view))
			}
		}
		var offers []map[string]any
		for _, o := range m.offers {
			if o.fw == fw {
				offers = append(offers, map[string]any{"id": o.id, "agent_id": o.agentID, "role": o.role, "resources": raw(o.resources)})
			}
		}
		return map[string]any{
			"id":                fw.id,
			"name":              fw.info.Name,
			"user":              fw.info.User,
			"principal":         fw.info.GetPrincipal(),
			"roles":             fw.roles,
			"framework_info":    raw(fw.info),
			"active":            fw.stream != nil,
			"connected":         fw.stream != nil,
			"recovered":         fw.recovered,
			"failover_timeout":  fw.info.GetFailoverTimeout(),
			"checkpoint":        fw.info.GetCheckpoint(),
			"registered_time":   unixSeconds(fw.registered),
			"reregistered_time": unixSeconds(fw.reregistered),
			"unregistered_time": unixSeconds(fw.unregistered),
			"tasks":             tasks,
			"unreachable_tasks": unreachable,
			"completed_tasks":   completed,
			"offers":            offers,
		}
	}
	var frameworks, completedFrameworks []map[string]any
	for _, fw := range m.frameworks {
		frameworks = append(frameworks, fwState(fw))
	}
	for _, fw := range m.removed {
		completedFrameworks = append(completedFrameworks, fwState(fw))
	}
	sortByID := func(s []map[string]any) {
		sort.Slice(s, func(i, j int) bool { return s[i]["id"].(string) < s[j]["id"].(string) })
	}
	sortByID(frameworks)
	sortByID(completedFrameworks)
	if slaves == nil {
		slaves = []map[string]any{}
	}
	if frameworks == nil {
		frameworks = []map[string]any{}
	}
	if completedFrameworks == nil {
		completedFrameworks = []map[string]any{}
	}
	pid := m.info.GetPID()
	writeJSON(w, map[string]any{
		"version":              m.cfg.Version,
		"id":                   m.id,
		"pid":                  pid,
		"hostname":             m.info.GetHostname(),
		"start_time":           unixSeconds(m.start),
		"elected_time":         unixSeconds(m.start),
		"leader":               pid,
		"activated_slaves":     float64(len(m.agents)),
		"deactivated_slaves":   0.0,
		"unreachable_slaves":   float64(len(m.unreachable)),
		"slaves":               slaves,
		"frameworks":           frameworks,
		"completed_frameworks": completedFrameworks,
		"flags": map[string]string{
			"allocation_interval":     m.timeouts.AllocationInterval.String(),
			"agent_ping_timeout":      m.timeouts.AgentPing.String(),
			"max_agent_ping_timeouts": json.Number(itoa(m.timeouts.MaxAgentPings)).String(),
		},
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func unreservedOnly(rs mesos.Resources) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		if len(r.Reservations) == 0 {
			out = append(out, r)
		}
	}
	return out
}

// scalarSummary renders resources as Mesos' flat {"cpus":2.0,"ports":"[..]"}.
// FrameworkSummary is one framework as the master knows it.
type FrameworkSummary struct {
	ID   string
	Name string
	// Connected is true while a SUBSCRIBE stream is open.
	Connected bool
}

// Frameworks lists the frameworks the master knows, by id.
func (m *Master) Frameworks() []FrameworkSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]FrameworkSummary, 0, len(m.frameworks))
	for _, id := range slices.Sorted(maps.Keys(m.frameworks)) {
		fw := m.frameworks[id]
		out = append(out, FrameworkSummary{ID: id, Name: fw.info.GetName(), Connected: fw.stream != nil})
	}
	return out
}

// AgentState is how the master sees an agent: "registered", "unreachable",
// "gone" or "unknown".
func (m *Master) AgentState(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.agents[id] != nil {
		return "registered"
	}
	if _, ok := m.gone[id]; ok {
		return "gone"
	}
	if _, ok := m.unreachable[id]; ok {
		return "unreachable"
	}
	return "unknown"
}
