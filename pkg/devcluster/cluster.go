package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config configures a whole dev cluster.
type Config struct {
	// Listen is the master's address (default 127.0.0.1:5050; port 0 picks one).
	Listen string
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
}

// DefaultAgentResources is what each agent offers unless told otherwise.
const DefaultAgentResources = "cpus:4;mem:8192;disk:65536;ports:[31000-32000]"

// Cluster is a running master and its agents. Its methods inject the faults
// the tests need: agents stopped, restarted or partitioned, executors killed,
// the master restarted.
type Cluster struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	master   *Master
	masterLn net.Listener
	masterSv *http.Server
	agents   []*agentSlot
}

// agentSlot is one agent position: its address and work dir outlive the
// Agent object, which is replaced on restart.
type agentSlot struct {
	cfg    AgentConfig
	agent  *Agent
	link   *link
	ln     net.Listener
	server *http.Server
}

// Start starts the master and cfg.Agents agents and waits until every agent
// is registered.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:5050"
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
	c := &Cluster{cfg: cfg, log: cfg.Logger}
	ln, err := net.Listen("tcp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("master listen on %s: %w", cfg.Listen, err)
	}
	c.masterLn = ln
	c.master = c.newMaster()
	c.masterSv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go c.masterSv.Serve(ln)
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

// MasterURL is the master's base URL, e.g. http://127.0.0.1:5050.
func (c *Cluster) MasterURL() string { return "http://" + c.masterLn.Addr().String() }

// Master returns the running master.
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

func (c *Cluster) newMaster() *Master {
	return NewMaster(MasterConfig{Listen: c.masterLn.Addr().String(), Timeouts: c.cfg.Timeouts}, c.log.With("component", "master"))
}

// ServeHTTP routes the fault-injection API (/devcluster/...) to the cluster
// and everything else to the current master, so a restarted master serves
// on the same listener.
func (c *Cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/devcluster/") {
		c.serveControl(w, r)
		return
	}
	c.Master().ServeHTTP(w, r)
}

func (c *Cluster) addAgent(n int) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("agent listen: %w", err)
	}
	slot := &agentSlot{ln: ln, cfg: AgentConfig{
		Hostname:   fmt.Sprintf("agent-%d", n),
		Listen:     ln.Addr().String(),
		Resources:  c.cfg.AgentResources,
		Attributes: c.cfg.AgentAttributes,
		WorkDir:    filepath.Join(c.cfg.WorkDir, fmt.Sprintf("agent-%d", n)),
		Timeouts:   c.cfg.Timeouts,
		Launcher:   c.cfg.Launcher,
	}}
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
		if slot.ln, err = net.Listen("tcp4", slot.cfg.Listen); err != nil {
			return fmt.Errorf("%s listen on %s again: %w", slot.cfg.Hostname, slot.cfg.Listen, err)
		}
	}
	slot.agent = agent
	slot.server = &http.Server{Handler: agent, ReadHeaderTimeout: 10 * time.Second}
	go slot.server.Serve(slot.ln)
	c.connect(slot)
	return nil
}

// connect links the slot's agent to the current master.
func (c *Cluster) connect(slot *agentSlot) {
	master, agent := c.master, slot.agent
	var l *link
	l = newLink(agent.HandleMasterMessage, func(msg any) { master.HandleAgentMessage(l, msg) })
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
	slot.link.cut.Store(true)
	slot.link.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = slot.server.Shutdown(ctx)
	cancel()
	slot.ln = nil // Shutdown closed it; restart binds the same address again
	slot.agent.Close(killExecutors)
	slot.agent = nil
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

// PartitionAgent cuts agent i off from the master: no message passes either
// way, so the master's health checks fail and it marks the agent unreachable.
func (c *Cluster) PartitionAgent(i int) error {
	return c.setCut(i, true)
}

// HealAgent ends a partition; the agent re-registers on its own.
func (c *Cluster) HealAgent(i int) error {
	return c.setCut(i, false)
}

func (c *Cluster) setCut(i int, cut bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, err := c.slot(i)
	if err != nil {
		return err
	}
	if slot.link == nil {
		return fmt.Errorf("agent %d is stopped", i)
	}
	slot.link.cut.Store(cut)
	return nil
}

// RestartMaster replaces the master with a fresh one on the same address,
// which knows nothing: agents re-register and frameworks must re-subscribe.
func (c *Cluster) RestartMaster() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range c.agents {
		if s.link != nil {
			s.link.cut.Store(true)
			s.link.close()
		}
	}
	c.master.Close()
	_ = c.masterSv.Shutdown(ctx)
	ln, err := net.Listen("tcp4", c.masterLn.Addr().String())
	if err != nil {
		return fmt.Errorf("master listen again: %w", err)
	}
	c.masterLn = ln
	c.master = c.newMaster()
	c.masterSv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go c.masterSv.Serve(ln)
	for _, s := range c.agents {
		if s.agent != nil {
			c.connect(s)
		}
	}
	return nil
}

// Close stops everything and kills every executor.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.agents {
		c.stopAgentLocked(s, true)
	}
	if c.masterSv != nil {
		c.master.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.masterSv.Shutdown(ctx)
		cancel()
		c.masterSv = nil
	}
}
