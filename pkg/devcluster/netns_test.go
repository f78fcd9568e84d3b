package devcluster

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mysos-project/mysos/internal/testutil"
)

func startNetnsCluster(t *testing.T, workDir string, agents int) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Listen: "127.0.0.1:0", Agents: agents, WorkDir: workDir, Timeouts: FastTimeouts(), Netns: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serveIn starts a TCP server in agent i's namespace on its own address that
// answers every connection with the agent's number.
func serveIn(t *testing.T, c *Cluster, i int) string {
	t.Helper()
	var ln net.Listener
	addr := net.JoinHostPort(c.nsnet.Address(i), "4000")
	if err := c.nsnet.inAgent(i, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("agent"))
			conn.Close()
		}
	}()
	return addr
}

// reach dials addr from agent from's namespace (0: the host) and reports
// whether the server answered.
func reach(t *testing.T, c *Cluster, from int, addr string) bool {
	t.Helper()
	try := func() error {
		conn, err := net.DialTimeout("tcp4", addr, 300*time.Millisecond)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		b, err := io.ReadAll(conn)
		if err == nil && string(b) != "agent" {
			err = errors.New("unexpected answer " + string(b))
		}
		return err
	}
	if from == 0 {
		return try() == nil
	}
	return c.nsnet.inAgent(from, try) == nil
}

// TestNetnsAgentsAreHosts: agents get addresses of their own; a server on
// one is reached from the host and the other agents; a partition cuts it off
// from both (the host's route to it is the blackhole, so nothing leaves the
// machine) while it still reaches itself; the master marks it unreachable
// and back; healing restores traffic; closing leaves nothing behind.
func TestNetnsAgentsAreHosts(t *testing.T) {
	testutil.RequireRoot(t, "network namespaces, veths, a bridge and a route")
	dir := t.TempDir()
	c := startNetnsCluster(t, dir, 3)
	st := c.nsnet.state
	addrs := map[string]bool{}
	for _, a := range c.Agents() {
		if !strings.HasPrefix(a.Hostname, netnsBase+".") || addrs[a.Hostname] || !strings.HasPrefix(a.Address, a.Hostname+":") {
			t.Fatalf("agent %+v: want its own 10.213 address, distinct, where it listens", a)
		}
		addrs[a.Hostname] = true
	}
	target := serveIn(t, c, 1)
	if !reach(t, c, 0, target) || !reach(t, c, 2, target) || !reach(t, c, 3, target) {
		t.Fatal("agent 1's server is not reachable from the host and the other agents")
	}

	agentID := c.Agents()[0].ID
	if err := c.PartitionAgent(0); err != nil {
		t.Fatal(err)
	}
	if reach(t, c, 0, target) || reach(t, c, 2, target) {
		t.Fatal("a partitioned agent is still reachable")
	}
	if !reach(t, c, 1, target) {
		t.Fatal("a client inside the cut agent no longer reaches its own server")
	}
	routes, err := netlink.RouteGet(net.ParseIP(c.nsnet.Address(1)))
	if !errors.Is(err, unix.EINVAL) && (err != nil || len(routes) == 0 || routes[0].Type != unix.RTN_BLACKHOLE) {
		t.Fatalf("route to the cut agent: %+v, %v; want the blackhole", routes, err)
	}
	waitFor(t, "the master to mark the agent unreachable", func() bool {
		return c.Master().AgentState(agentID) == "unreachable"
	})
	if err := c.HealAgent(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "traffic and registration back after healing", func() bool {
		return reach(t, c, 0, target) && reach(t, c, 2, target) && c.Master().AgentState(agentID) == "registered"
	})

	c.Close()
	expectNothingLeft(t, st)
}

// TestNetnsLeftoversOfACrashAreRemoved: a dev cluster that died without
// cleaning up (kill -9) leaves its namespaces; the next start on the same
// work dir removes them first.
func TestNetnsLeftoversOfACrashAreRemoved(t *testing.T) {
	testutil.RequireRoot(t, "network namespaces, veths, a bridge and a route")
	dir := t.TempDir()
	c := startNetnsCluster(t, dir, 2)
	crashed := c.nsnet.state
	c.nsnet = nil // as if the process died: Close leaves the network alone
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, netnsStateFile)); err != nil {
		t.Fatalf("the state file is gone: %v", err)
	}
	again := startNetnsCluster(t, dir, 1)
	for _, name := range crashed.Namespaces[1:] {
		if _, err := netns.GetFromName(name); err == nil {
			t.Fatalf("namespace %s of the crashed cluster is left", name)
		}
	}
	st := again.nsnet.state
	again.Close()
	expectNothingLeft(t, crashed)
	expectNothingLeft(t, st)
}

func expectNothingLeft(t *testing.T, st netnsState) {
	t.Helper()
	for _, name := range st.Namespaces {
		if h, err := netns.GetFromName(name); err == nil {
			h.Close()
			t.Errorf("namespace %s left", name)
		}
	}
	for _, name := range append([]string{st.Bridge}, st.Veths...) {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s left", name)
		}
	}
	routes, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Type: unix.RTN_BLACKHOLE}, netlink.RT_FILTER_TYPE)
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == st.Subnet {
			t.Errorf("blackhole route for %s left", st.Subnet)
		}
	}
}

// TestNetnsOneWayPartition: cut "in", nothing reaches the agent while what
// it sends still arrives; cut "out", the reverse; heal restores both.
func TestNetnsOneWayPartition(t *testing.T) {
	testutil.RequireRoot(t, "network namespaces, veths, a bridge and a route")
	c := startNetnsCluster(t, t.TempDir(), 2)
	defer c.Close()
	host := c.nsnet.bridgeIP.String()
	agent := c.nsnet.Address(1)
	// arrives reports whether a UDP datagram from one side reaches the other.
	arrives := func(fromAgent bool) bool {
		t.Helper()
		listenAt := host
		if !fromAgent {
			listenAt = agent
		}
		var pc net.PacketConn
		listen := func() (err error) { pc, err = net.ListenPacket("udp4", net.JoinHostPort(listenAt, "0")); return err }
		if fromAgent {
			if err := listen(); err != nil {
				t.Fatal(err)
			}
		} else if err := c.nsnet.inAgent(1, listen); err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		send := func() error {
			conn, err := net.Dial("udp4", pc.LocalAddr().String())
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Write([]byte("ping"))
			return err
		}
		if fromAgent {
			_ = c.nsnet.inAgent(1, send)
		} else {
			_ = send()
		}
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 8)
		n, _, err := pc.ReadFrom(buf)
		return err == nil && string(buf[:n]) == "ping"
	}
	if !arrives(true) || !arrives(false) {
		t.Fatal("datagrams do not pass before any partition")
	}
	if err := c.PartitionAgentOneWay(0, DirectionIn); err != nil {
		t.Fatal(err)
	}
	if arrives(false) || !arrives(true) {
		t.Fatal("cut in: want nothing reaching the agent, and what it sends arriving")
	}
	if err := c.HealAgent(0); err != nil {
		t.Fatal(err)
	}
	if err := c.PartitionAgentOneWay(0, DirectionOut); err != nil {
		t.Fatal(err)
	}
	if !arrives(false) || arrives(true) {
		t.Fatal("cut out: want what reaches the agent arriving, and nothing it sends leaving")
	}
	if err := c.HealAgent(0); err != nil {
		t.Fatal(err)
	}
	if !arrives(true) || !arrives(false) {
		t.Fatal("datagrams do not pass after healing")
	}
}
