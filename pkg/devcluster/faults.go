package devcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// serveControl is the fault-injection API, for tests written in other
// languages and for people at a shell:
//
//	GET  /devcluster/agents                     the agents: index, hostname, id, address, state
//	POST /devcluster/agents/{i}/stop            stop agent i (executors keep running)
//	POST /devcluster/agents/{i}/restart         restart agent i with recovery
//	POST /devcluster/agents/{i}/partition       cut agent i off from the master
//	POST /devcluster/agents/{i}/heal            end the partition
//	POST /devcluster/master/restart             replace the master with a fresh one
//
// Real Mesos has no such endpoints; they live under a path no Mesos client uses.
func (c *Cluster) serveControl(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/devcluster/"), "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "agents":
		c.writeAgents(w)
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "master" && parts[1] == "restart":
		c.answer(w, c.RestartMaster())
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "agents":
		i, err := strconv.Atoi(parts[1])
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("agent index %q is not a number", parts[1]))
			return
		}
		action, ok := map[string]func(int) error{
			"stop": c.StopAgent, "restart": c.RestartAgent, "partition": c.PartitionAgent, "heal": c.HealAgent,
		}[parts[2]]
		if !ok {
			writeError(w, http.StatusNotFound, "unknown agent action "+parts[2]+": use stop, restart, partition or heal")
			return
		}
		c.answer(w, action(i))
	default:
		writeError(w, http.StatusNotFound, "unknown dev cluster control path; see GET /devcluster/agents")
	}
}

func (c *Cluster) answer(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AgentSummary describes one agent position for the control API.
type AgentSummary struct {
	Index       int    `json:"index"`
	Hostname    string `json:"hostname"`
	ID          string `json:"id,omitempty"`
	Address     string `json:"address"`
	Running     bool   `json:"running"`
	Partitioned bool   `json:"partitioned"`
}

// Agents lists the agent positions.
func (c *Cluster) Agents() []AgentSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AgentSummary, len(c.agents))
	for i, s := range c.agents {
		out[i] = AgentSummary{Index: i, Hostname: s.cfg.Hostname, Address: s.cfg.Listen, Running: s.agent != nil}
		if s.agent != nil {
			out[i].ID = s.agent.ID()
			out[i].Partitioned = s.link.cut.Load()
		}
	}
	return out
}

func (c *Cluster) writeAgents(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.Agents())
}
