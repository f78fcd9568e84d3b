package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Config configures a whole dev cluster.
type Config struct {
	// Listen is the first master's address (default 127.0.0.1:5050; port 0
	// picks one).
	Listen string
	// Masters is how many masters to run (default 1). Exactly one leads;
	// the others are standbys that redirect schedulers to it. Master k > 0
	// listens on its own loopback address, 127.0.0.<k+1>, on the first
	// master's port if free (another port otherwise).
	Masters int
	// Agents is how many agents to start.
	Agents int
	// AgentResources and AgentAttributes use Mesos' syntax and apply to every
	// agent, e.g. "cpus:4;mem:8192;disk:65536;ports:[31000-32000]" and "rack:r1".
	AgentResources  string
	AgentAttributes string
	// WorkDir holds one directory per agent (agent-1, agent-2, ...).
	WorkDir  string
	Timeouts Timeouts
	// Launcher starts executor processes; nil means LocalLauncher.
	Launcher Launcher
	Logger   *slog.Logger
	// Isolation is "posix" (none, the default, as Mesos' own default) or
	// "cgroups" (Mesos' cgroups/cpu,cgroups/mem: CPU shares, quota and a
	// memory limit per container; posix when cgroups are unavailable).
	Isolation string
	// FrameworkCredentials, when set, make the masters authenticate
	// schedulers (HTTP basic authentication; Mesos' --credentials with
	// --authenticate_http_frameworks): principal to secret.
	FrameworkCredentials map[string]string
	// Netns gives every agent a network namespace of its own (root only):
	// an address on a private subnet, reachable from the host and the other
	// agents through a bridge, and cut off from all of them by a partition.
	Netns bool
}

// DefaultAgentResources is what each agent offers unless told otherwise.
const DefaultAgentResources = "cpus:4;mem:8192;disk:65536;ports:[31000-32000]"

// Cluster is running masters and their agents. Its methods inject the
// faults the tests need: agents stopped, restarted, partitioned or marked
// gone, executors killed, the leading master restarted or failed over.
//
// The masters share a registry (agents admitted, unreachable, gone), as
// Mesos masters share the replicated log; everything else a master knows
// lives in its Master object, which is replaced at every restart or
// election.
type Cluster struct {
	cfg Config
	log *slog.Logger
	reg *registry

	mu      sync.Mutex
	masters []*masterSlot
	leader  int     // index into masters; -1 while no master leads
	master  *Master // the leader's; nil while no master leads
	agents  []*agentSlot
	net     *agentNet // the agents' loopback addresses
	nsnet   *netnsNet // the agents' namespaces, with Config.Netns
	cg      cgroups   // containers' cgroups, with Config.Isolation "cgroups"

	// route is what the HTTP handlers read, without c.mu, so that a server
	// shutdown under c.mu never waits for a handler that waits for c.mu.
	route atomic.Pointer[route]
}

// route is the current leadership as the masters' HTTP servers see it.
type route struct {
	leader int
	master *Master
	info   *mesos.MasterInfo
}

// masterSlot is one master position: its address outlives the Master
// objects that serve on it.
type masterSlot struct {
	addr   string
	ln     net.Listener
	server *http.Server
}

// agentSlot is one agent position: its address and work dir outlive the
// Agent object, which is replaced on restart.
type agentSlot struct {
	n      int // the agent's number, from 1
	cfg    AgentConfig
	agent  *Agent
	link   *link
	ln     net.Listener
	server *http.Server
	lastID string // the agent id last seen, for stopped agents
	gone   bool
}

// Start starts the masters and cfg.Agents agents and waits until every
// agent is registered. The first master leads.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:5050"
	}
	if cfg.Masters <= 0 {
		cfg.Masters = 1
	}
	if cfg.AgentResources == "" {
		cfg.AgentResources = DefaultAgentResources
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	if cfg.Launcher == nil {
		cfg.Launcher = LocalLauncher{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WorkDir != "" {
		if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
	}
	agentNet, err := leaseAgentNet(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, reg: newRegistry(), leader: -1, net: agentNet}
	c.route.Store(&route{leader: -1})
	if cfg.Netns {
		if c.nsnet, err = newNetnsNet(agentNet, cfg.WorkDir, cfg.Logger); err != nil {
			agentNet.release()
			return nil, err
		}
	} else {
		cfg.Logger.Info("agents share the host's network, each on its own loopback address", "first", agentNet.Address(1))
	}
	c.setUpIsolation()
	ln, err := net.Listen("tcp4", cfg.Listen)
	if err != nil {
		c.releaseNetwork()
		return nil, fmt.Errorf("master listen on %s: %w", cfg.Listen, err)
	}
	c.masters = append(c.masters, &masterSlot{addr: ln.Addr().String(), ln: ln})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for k := 1; k < cfg.Masters; k++ {
		ln, err := listenStandby(k, port)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.masters = append(c.masters, &masterSlot{addr: ln.Addr().String(), ln: ln})
	}
	for i, ms := range c.masters {
		c.serveMaster(i, ms)
	}
	c.mu.Lock()
	c.electLocked(0)
	c.mu.Unlock()
	for i := range cfg.Agents {
		if err := c.addAgent(i + 1); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitRegistered(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// listenStandby binds master k's own loopback address, 127.0.0.<k+1>, on
// port if it is free, on any port otherwise, falling back to 127.0.0.1 on
// systems where only that loopback address exists.
func listenStandby(k int, port string) (net.Listener, error) {
	host := fmt.Sprintf("127.0.0.%d", k+1)
	for _, addr := range []string{net.JoinHostPort(host, port), net.JoinHostPort(host, "0"), "127.0.0.1:0"} {
		if ln, err := net.Listen("tcp4", addr); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("master %d: no loopback address to listen on", k)
}

// serveMaster starts the HTTP server of master position i on its listener.
func (c *Cluster) serveMaster(i int, ms *masterSlot) {
	ms.server = &http.Server{Handler: masterHandler{c: c, index: i}, ReadHeaderTimeout: 10 * time.Second}
	go ms.server.Serve(ms.ln)
}

// masterHandler routes the requests to master position index: the
// fault-injection API (/devcluster/...) to the cluster, everything else to
// the Master if this position leads, and to the standby's redirects if not.
type masterHandler struct {
	c     *Cluster
	index int
}

func (h masterHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/devcluster/") {
		h.c.serveControl(w, r)
		return
	}
	rt := h.c.route.Load()
	if rt.leader == h.index && rt.master != nil {
		rt.master.ServeHTTP(w, r)
		return
	}
	ServeStandby(w, r, rt.info)
}

// MasterURL is the first master's base URL, e.g. http://127.0.0.1:5050.
// After a failover that master is a standby, which redirects schedulers to
// the leader, as a Mesos client configured with one master address sees.
func (c *Cluster) MasterURL() string { return "http://" + c.masters[0].addr }

// MasterURLs are the base URLs of all masters, the first one first.
func (c *Cluster) MasterURLs() []string {
	out := make([]string, len(c.masters))
	for i, ms := range c.masters {
		out[i] = "http://" + ms.addr
	}
	return out
}

// LeaderURL is the leading master's base URL, "" while none leads.
func (c *Cluster) LeaderURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader < 0 {
		return ""
	}
	return "http://" + c.masters[c.leader].addr
}

// Leader is the index of the leading master, -1 while none leads.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Master returns the leading master, nil while none leads.
func (c *Cluster) Master() *Master {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.master
}

// Agent returns the running agent at index i (0-based), nil while stopped.
func (c *Cluster) Agent(i int) *Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents[i].agent
}

// AgentCount is the number of agent positions.
func (c *Cluster) AgentCount() int { return len(c.agents) }

// ServeHTTP serves as the first master does (see MasterURL).
func (c *Cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	masterHandler{c: c, index: 0}.ServeHTTP(w, r)
}

// electLocked makes master position i the leader, with a fresh Master that
// knows only the registry, or leaves the cluster without a leader when i
// is negative. The previous leader's Master dies and its server drops every
// connection, as the process of a Mesos master that loses leadership exits
// and restarts as a standby. Agents are reconnected to the new leader and
// re-register. Caller holds c.mu.
func (c *Cluster) electLocked(i int) error {
	partitioned := map[*agentSlot]bool{}
	for _, s := range c.agents {
		if s.link != nil {
			partitioned[s] = s.link.cut.Load() && s.agent != nil
			s.link.cut.Store(true)
			s.link.close()
			s.link = nil
		}
	}
	if c.master != nil {
		old := c.masters[c.leader]
		c.master.Close()
		c.route.Store(&route{leader: -1})
		if err := c.restartServerLocked(c.leader, old); err != nil {
			c.log.Error("master server restart", "err", err)
		}
		c.master = nil
	}
	c.leader = -1
	c.route.Store(&route{leader: -1})
	if i >= 0 {
		ms := c.masters[i]
		c.master = NewMaster(MasterConfig{Listen: ms.addr, Timeouts: c.cfg.Timeouts, Credentials: c.cfg.FrameworkCredentials, registry: c.reg},
			c.log.With("component", "master", "master", i))
		c.leader = i
		info := c.master.Info()
		c.route.Store(&route{leader: i, master: c.master, info: &info})
		c.log.Info("master elected", "index", i, "address", ms.addr)
	} else {
		c.log.Info("no master leads")
	}
	for _, s := range c.agents {
		if s.agent != nil {
			c.connect(s)
			// A partition cuts the agent off from every master.
			s.link.cut.Store(partitioned[s])
		}
	}
	return nil
}

// restartServerLocked closes master position i's server, with every
// connection, and serves again on the same address.
func (c *Cluster) restartServerLocked(i int, ms *masterSlot) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ms.server.Shutdown(ctx)
	ln, err := net.Listen("tcp4", ms.addr)
	if err != nil {
		return fmt.Errorf("master %d listen again on %s: %w", i, ms.addr, err)
	}
	ms.ln = ln
	c.serveMaster(i, ms)
	return nil
}

func (c *Cluster) addAgent(n int) error {
	host := c.net.Address(n)
	launcher := c.cfg.Launcher
	if c.nsnet != nil {
		host = c.nsnet.Address(n)
		if err := c.nsnet.addAgent(n); err != nil {
			return err
		}
		launcher = netnsLauncher{base: launcher, net: c.nsnet, agent: n}
	}
	if c.cg != nil {
		launcher = cgroupLauncher{base: launcher, cg: c.cg}
	}
	slot := &agentSlot{n: n, cfg: AgentConfig{
		Hostname:   host,
		Listen:     net.JoinHostPort(host, "0"),
		Resources:  c.cfg.AgentResources,
		Attributes: c.cfg.AgentAttributes,
		WorkDir:    filepath.Join(c.cfg.WorkDir, fmt.Sprintf("agent-%d", n)),
		Timeouts:   c.cfg.Timeouts,
		Launcher:   launcher,
	}}
	ln, err := c.listenAgent(slot)
	if err != nil {
		return fmt.Errorf("agent listen on %s: %w", host, err)
	}
	slot.ln = ln
	slot.cfg.Listen = ln.Addr().String()
	c.agents = append(c.agents, slot)
	return c.startAgent(slot)
}

// startAgent creates the slot's Agent (recovering its work dir), serves its
// HTTP API and connects it to the master.
func (c *Cluster) startAgent(slot *agentSlot) error {
	agent, err := NewAgent(slot.cfg, c.log.With("component", "agent", "hostname", slot.cfg.Hostname))
	if err != nil {
		return fmt.Errorf("start %s: %w", slot.cfg.Hostname, err)
	}
	if slot.ln == nil {
		if slot.ln, err = c.listenAgent(slot); err != nil {
			return fmt.Errorf("%s listen on %s again: %w", slot.cfg.Hostname, slot.cfg.Listen, err)
		}
	}
	slot.agent = agent
	slot.server = &http.Server{Handler: agent, ReadHeaderTimeout: 10 * time.Second}
	go slot.server.Serve(slot.ln)
	c.connect(slot)
	return nil
}

// connect links the slot's agent to the leading master; while none leads,
// to nowhere (what the agent sends is dropped, and it keeps retrying).
func (c *Cluster) connect(slot *agentSlot) {
	master, agent := c.master, slot.agent
	var l *link
	if master == nil {
		l = newLink(agent.HandleMasterMessage, func(any) {})
	} else {
		l = newLink(agent.HandleMasterMessage, func(msg any) { master.HandleAgentMessage(l, msg) })
	}
	slot.link = l
	agent.Connect(l)
}

// WaitRegistered blocks until every running agent has an id from the master.
func (c *Cluster) WaitRegistered(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.allRegistered() {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("agents did not register with the master in time")
		case <-tick.C:
		}
	}
}

func (c *Cluster) allRegistered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.agents {
		if s.agent != nil && s.agent.ID() == "" {
			return false
		}
	}
	return true
}

func (c *Cluster) slot(i int) (*agentSlot, error) {
	if i < 0 || i >= len(c.agents) {
		return nil, fmt.Errorf("no agent %d: the cluster has agents 0..%d", i, len(c.agents)-1)
	}
	return c.agents[i], nil
}

// StopAgent stops agent i as a crashed agent process would stop: its
// executors keep running (those of checkpointing frameworks re-subscribe
// when it restarts) and the master stops hearing from it.
func (c *Cluster) StopAgent(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, err := c.slot(i)
	if err != nil {
		return err
	}
	c.stopAgentLocked(slot, false)
	return nil
}

func (c *Cluster) stopAgentLocked(slot *agentSlot, killExecutors bool) {
	if slot.agent == nil {
		return
	}
	if id := slot.agent.ID(); id != "" {
		slot.lastID = id
	}
	if slot.link != nil {
		slot.link.cut.Store(true)
		slot.link.close()
	}
	// The agent goes first, as a dying agent process would: then its server
	// stops, ending the executors' streams.
	slot.agent.Close(killExecutors)
	slot.agent = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = slot.server.Shutdown(ctx)
	cancel()
	slot.ln = nil // Shutdown closed it; restart binds the same address again
}

// killOrphans kills the executors a stopped agent left running (StopAgent
// keeps them for a restart) by recovering the agent from its work dir just
// to close it, so that closing the cluster leaves no process behind.
func killOrphans(slot *agentSlot, log *slog.Logger) {
	if _, err := os.Stat(slot.cfg.WorkDir); err != nil {
		return // never started
	}
	agent, err := NewAgent(slot.cfg, log)
	if err != nil {
		log.Warn("cannot recover a stopped agent to kill its executors", "agent", slot.cfg.Hostname, "err", err)
		return
	}
	agent.Close(true)
}

// RestartAgent stops agent i if it runs and starts it again on the same
// work dir and address, as an agent restart with recovery.
func (c *Cluster) RestartAgent(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, err := c.slot(i)
	if err != nil {
		return err
	}
	c.stopAgentLocked(slot, false)
	return c.startAgent(slot)
}

// KillExecutor kills an executor process on agent i (SIGKILL to its
// process group).
func (c *Cluster) KillExecutor(i int, frameworkID, executorID string) error {
	c.mu.Lock()
	slot, err := c.slot(i)
	var agent *Agent
	if err == nil {
		agent = slot.agent
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if agent == nil {
		return fmt.Errorf("agent %d is stopped", i)
	}
	return agent.KillExecutor(frameworkID, executorID)
}

// PartitionAgent cuts agent i off from the master: no message passes either
// way, so the master's health checks fail and it marks the agent unreachable.
func (c *Cluster) PartitionAgent(i int) error {
	return c.setCut(i, true)
}

// HealAgent ends a partition; the agent re-registers on its own.
func (c *Cluster) HealAgent(i int) error {
	return c.setCut(i, false)
}

// runningSlot is agent i's slot, if the agent runs. Caller holds c.mu.
func (c *Cluster) runningSlot(i int) (*agentSlot, error) {
	slot, err := c.slot(i)
	if err != nil {
		return nil, err
	}
	if slot.link == nil {
		return nil, fmt.Errorf("agent %d is stopped", i)
	}
	return slot, nil
}

func (c *Cluster) setCut(i int, cut bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, err := c.runningSlot(i)
	if err != nil {
		return err
	}
	slot.link.cut.Store(cut)
	if !cut {
		slot.link.dropToAgent.Store(false)
		slot.link.dropToMaster.Store(false)
	}
	if c.nsnet != nil {
		// The agent's network goes too: its tasks can no longer reach or
		// be reached by the host or the other agents.
		if !cut {
			if err := c.nsnet.filter(slot.n, DirectionIn, false); err != nil {
				return err
			}
		}
		return c.nsnet.connect(slot.n, !cut)
	}
	return nil
}

// setUpIsolation makes the dev cluster's cgroups when asked to, and says
// which isolation executors get.
func (c *Cluster) setUpIsolation() {
	switch c.cfg.Isolation {
	case "", "posix":
		c.log.Info("executors run with posix isolation: no CPU or memory limits")
	case "cgroups":
		cg, err := newCgroups(fmt.Sprintf("mysos-devcluster-b%d", c.net.block), c.log)
		if err != nil {
			c.log.Warn("cgroups are not available; executors run with posix isolation", "err", err)
			return
		}
		c.cg = cg
		c.log.Info("executors run with cgroups isolation: CPU shares and quota, memory limits", "cgroup", cg.mode(), "roots", cg.roots())
	default:
		c.log.Warn("unknown isolation; executors run with posix isolation", "isolation", c.cfg.Isolation)
	}
}

// Direction says which way a one-way partition cuts.
type Direction string

// Partition directions.
const (
	// DirectionIn: nothing reaches the agent (from the master, the host or
	// the other agents); it can still send.
	DirectionIn Direction = "in"
	// DirectionOut: nothing leaves the agent; it still receives.
	DirectionOut Direction = "out"
)

// PartitionAgentOneWay cuts agent i in one direction: the master↔agent
// messages that way and, with Config.Netns, every packet that way through
// its link (nftables in its namespace). HealAgent ends it.
func (c *Cluster) PartitionAgentOneWay(i int, dir Direction) error {
	if dir != DirectionIn && dir != DirectionOut {
		return fmt.Errorf("partition direction %q: use in or out", dir)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, err := c.runningSlot(i)
	if err != nil {
		return err
	}
	if dir == DirectionIn {
		slot.link.dropToAgent.Store(true)
	} else {
		slot.link.dropToMaster.Store(true)
	}
	if c.nsnet != nil {
		return c.nsnet.filter(slot.n, dir, true)
	}
	return nil
}

// listenAgent opens an agent's HTTP listener, inside its namespace with
// Config.Netns.
func (c *Cluster) listenAgent(slot *agentSlot) (net.Listener, error) {
	if c.nsnet == nil {
		return net.Listen("tcp4", slot.cfg.Listen)
	}
	var ln net.Listener
	err := c.nsnet.inAgent(slot.n, func() error {
		var err error
		ln, err = net.Listen("tcp4", slot.cfg.Listen)
		return err
	})
	return ln, err
}

// releaseNetwork removes the agents' namespaces and gives the address block
// back.
func (c *Cluster) releaseNetwork() {
	if c.cg != nil {
		c.cg.close()
		c.cg = nil
	}
	if c.nsnet != nil {
		c.nsnet.close()
		c.nsnet = nil
	}
	c.net.release()
}

// RestartMaster replaces the leading master with a fresh one on the same
// address, which knows only the registry: agents re-register, frameworks
// must re-subscribe, and the master answers 503 and withholds some
// reconciliation answers while it recovers (see master_failover.go). With
// no leader, it elects the first master.
func (c *Cluster) RestartMaster() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.leader
	if i < 0 {
		i = 0
	}
	return c.electLocked(i)
}

// FailoverMaster makes the next master (in MasterURLs order, wrapping
// around) the leader: a fresh Master, as after RestartMaster, on another
// address, while the old leader becomes a standby that redirects. With one
// master it is RestartMaster.
func (c *Cluster) FailoverMaster() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.electLocked((c.leader + 1) % len(c.masters))
}

// ElectMaster makes master i the leader (a fresh Master even if it already
// leads); a negative i leaves the cluster without a leader, so that every
// master answers 503 "No leader elected" until the next election.
func (c *Cluster) ElectMaster(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= len(c.masters) {
		return fmt.Errorf("no master %d: the cluster has masters 0..%d", i, len(c.masters)-1)
	}
	if i < 0 {
		i = -1
	}
	return c.electLocked(i)
}

// MarkAgentGone marks agent i gone, as an operator's MARK_AGENT_GONE: the
// leading master reports its tasks TASK_GONE_BY_OPERATOR (TASK_LOST to
// frameworks that are not partition-aware) and tells the agent to shut
// down; the agent kills its executors and no master accepts it again (also
// after RestartAgent, which keeps its id). Its work dir and volumes stay on
// disk. The agent must have registered once.
func (c *Cluster) MarkAgentGone(i int) error {
	c.mu.Lock()
	slot, err := c.slot(i)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	id := slot.lastID
	if slot.agent != nil {
		if cur := slot.agent.ID(); cur != "" {
			id = cur
		}
	}
	m := c.master
	c.mu.Unlock()
	if id == "" {
		return fmt.Errorf("agent %d never registered", i)
	}
	if m == nil {
		return errors.New("no master leads")
	}
	if err := m.MarkAgentGone(id); err != nil {
		return err
	}
	c.mu.Lock()
	slot.gone = true
	slot.lastID = id
	c.mu.Unlock()
	return nil
}

// Close stops everything and kills every executor.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.agents {
		if s.agent == nil {
			killOrphans(s, c.log)
		}
		c.stopAgentLocked(s, true)
	}
	if c.master != nil {
		c.master.Close()
		c.master = nil
	}
	c.leader = -1
	c.route.Store(&route{leader: -1})
	c.releaseNetwork()
	for _, ms := range c.masters {
		if ms.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = ms.server.Shutdown(ctx)
			cancel()
			ms.server = nil
		} else if ms.ln != nil {
			ms.ln.Close()
		}
	}
}

// AgentNetns names the network namespace agent i and its executors live in
// (for `ip netns exec`), or "" when the agents share the host's network.
func (c *Cluster) AgentNetns(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nsnet == nil || i < 0 || i >= len(c.agents) {
		return ""
	}
	return c.nsnet.nsName(c.agents[i].n)
}
