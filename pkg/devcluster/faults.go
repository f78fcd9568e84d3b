package devcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// serveControl is the fault-injection API, for tests written in other
// languages and for people at a shell. Every master address serves it.
//
//	GET  /devcluster/agents                     the agents: index, hostname, id, address, state
//	POST /devcluster/agents/{i}/stop            stop agent i (executors keep running)
//	POST /devcluster/agents/{i}/restart         restart agent i with recovery
//	POST /devcluster/agents/{i}/partition       cut agent i off from the master (and, with
//	                                            --netns, from the network); ?direction=in|out
//	                                            cuts one way only
//	POST /devcluster/agents/{i}/heal            end the partition
//	POST /devcluster/agents/{i}/gone            mark agent i gone (MARK_AGENT_GONE): its tasks
//	                                            become TASK_GONE_BY_OPERATOR, it shuts down its
//	                                            executors and is never accepted again
//	POST /devcluster/agents/{i}/executors/{framework}/{executor}/kill
//	                                            SIGKILL an executor's process group
//	GET  /devcluster/masters                    the masters: index, url, leader
//	POST /devcluster/master/restart             replace the leading master with a fresh one
//	POST /devcluster/master/failover            make the next master the leader (fresh)
//	POST /devcluster/master/elect/{i}           make master i the leader; i = -1 or "none":
//	                                            no leader, every master answers 503
//
// A new leader knows only the registry (agents admitted, unreachable and
// gone): for Timeouts.MasterRecovery it answers 503 to scheduler calls, and
// for Timeouts.AgentReregistration it withholds reconciliation answers
// about agents that have not re-registered yet. Standby masters answer 307
// to the leader.
//
// Real Mesos has no such endpoints; they live under a path no Mesos client uses.
func (c *Cluster) serveControl(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/devcluster/"), "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "agents":
		c.writeAgents(w)
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "masters":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Masters())
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "master" && parts[1] == "restart":
		c.answer(w, c.RestartMaster())
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "master" && parts[1] == "failover":
		c.answer(w, c.FailoverMaster())
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "master" && parts[1] == "elect":
		i := -1
		if parts[2] != "none" {
			n, err := strconv.Atoi(parts[2])
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("master index %q is not a number", parts[2]))
				return
			}
			i = n
		}
		c.answer(w, c.ElectMaster(i))
	case r.Method == http.MethodPost && len(parts) == 6 && parts[0] == "agents" && parts[2] == "executors" && parts[5] == "kill":
		i, err := strconv.Atoi(parts[1])
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("agent index %q is not a number", parts[1]))
			return
		}
		c.answer(w, c.KillExecutor(i, parts[3], parts[4]))
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "agents":
		i, err := strconv.Atoi(parts[1])
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("agent index %q is not a number", parts[1]))
			return
		}
		partition := c.PartitionAgent
		if dir := r.URL.Query().Get("direction"); dir != "" && dir != "both" {
			partition = func(i int) error { return c.PartitionAgentOneWay(i, Direction(dir)) }
		}
		action, ok := map[string]func(int) error{
			"stop": c.StopAgent, "restart": c.RestartAgent, "partition": partition, "heal": c.HealAgent,
			"gone": c.MarkAgentGone,
		}[parts[2]]
		if !ok {
			writeError(w, http.StatusNotFound, "unknown agent action "+parts[2]+": use stop, restart, partition, heal or gone")
			return
		}
		c.answer(w, action(i))
	default:
		writeError(w, http.StatusNotFound, "unknown dev cluster control path; see GET /devcluster/agents")
	}
}

// MasterSummary describes one master position for the control API.
type MasterSummary struct {
	Index  int    `json:"index"`
	URL    string `json:"url"`
	Leader bool   `json:"leader"`
}

// Masters lists the master positions.
func (c *Cluster) Masters() []MasterSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MasterSummary, len(c.masters))
	for i, ms := range c.masters {
		out[i] = MasterSummary{Index: i, URL: "http://" + ms.addr, Leader: i == c.leader}
	}
	return out
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
	// Gone: marked gone; the masters never accept this agent again.
	Gone bool `json:"gone"`
}

// Agents lists the agent positions.
func (c *Cluster) Agents() []AgentSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AgentSummary, len(c.agents))
	for i, s := range c.agents {
		out[i] = AgentSummary{Index: i, Hostname: s.cfg.Hostname, ID: s.lastID, Address: s.cfg.Listen,
			Running: s.agent != nil, Gone: s.gone}
		if s.agent != nil {
			if id := s.agent.ID(); id != "" {
				out[i].ID = id
			}
			out[i].Partitioned = s.link.cut.Load()
		}
	}
	return out
}

func (c *Cluster) writeAgents(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.Agents())
}
