package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// With --netns every agent is a host of its own: a network namespace with
// its own address on a veth pair to a bridge on a private /24 that the dev
// cluster makes and removes itself. Executors (and their mysqld) start
// inside their agent's namespace. The host reaches each agent through a /32
// route on the bridge, not a /24 one, so that cutting an agent (its bridge
// port down, its route removed) leaves only the blackhole route for its
// address: a packet for a cut agent is dropped on this machine and never
// leaves through the default route. The blackhole goes in before anything
// else and comes out last; what was made is written to the work dir, so
// the next start removes what a crash left behind.

// netnsBase is the private range the dev cluster's subnets come from: its
// /24 number b is the agent-address block the cluster leased, so parallel
// dev clusters never share a subnet.
const netnsBase = "10.213"

// netnsStateFile in the work dir records what was made, for people; the
// next start cleans by the block's names (cleanLeftovers).
const netnsStateFile = "netns.json"

// netnsState is what one dev cluster made on the host.
type netnsState struct {
	Subnet     string   `json:"subnet"`
	Bridge     string   `json:"bridge"`
	Namespaces []string `json:"namespaces"`
	Veths      []string `json:"veths"`
}

// netnsNet gives agents namespaces of their own.
type netnsNet struct {
	block    int
	subnet   *net.IPNet
	bridgeIP net.IP
	bridge   netlink.Link
	workDir  string
	lease    *agentNet
	log      *slog.Logger
	state    netnsState
}

// newNetnsNet prepares the subnet of a leased block: it removes what a
// crashed predecessor left, then installs the blackhole route and the
// bridge.
func newNetnsNet(lease *agentNet, workDir string, log *slog.Logger) (*netnsNet, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("--netns needs root (network namespaces, veth pairs, a bridge and a route)")
	}
	n := &netnsNet{block: lease.block, workDir: workDir, lease: lease, log: log}
	_, n.subnet, _ = net.ParseCIDR(fmt.Sprintf("%s.%d.0/24", netnsBase, n.block))
	n.bridgeIP = net.ParseIP(fmt.Sprintf("%s.%d.254", netnsBase, n.block)).To4()
	n.cleanLeftovers()
	if err := n.checkSubnetFree(); err != nil {
		return nil, err
	}
	n.state = netnsState{Subnet: n.subnet.String(), Bridge: fmt.Sprintf("msb%d", n.block)}
	if err := n.save(); err != nil {
		return nil, err
	}
	if err := netlink.RouteAdd(n.blackhole()); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("netns: blackhole route for %s: %w", n.subnet, err)
	}
	if err := n.makeBridge(); err != nil {
		n.close()
		return nil, err
	}
	log.Info("agents get network namespaces", "subnet", n.subnet.String(), "bridge", n.state.Bridge, "host", n.bridgeIP.String())
	return n, nil
}

func (n *netnsNet) blackhole() *netlink.Route {
	return &netlink.Route{Dst: n.subnet, Type: unix.RTN_BLACKHOLE}
}

// checkSubnetFree refuses a subnet some interface of the machine already
// uses: the dev cluster must never route traffic meant for a real network.
func (n *netnsNet) checkSubnetFree() error {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("netns: list addresses: %w", err)
	}
	for _, a := range addrs {
		if n.subnet.Contains(a.IP) || a.IPNet.Contains(n.subnet.IP) {
			return fmt.Errorf("netns: the subnet %s overlaps %s on this machine; stop whatever uses it", n.subnet, a.IPNet)
		}
	}
	return nil
}

func (n *netnsNet) makeBridge() error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.state.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("netns: bridge %s: %w", br.Name, err)
	}
	link, err := netlink.LinkByName(br.Name)
	if err != nil {
		return err
	}
	n.bridge = link
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: n.bridgeIP, Mask: net.CIDRMask(32, 32)}}); err != nil {
		return fmt.Errorf("netns: address of %s: %w", br.Name, err)
	}
	return netlink.LinkSetUp(link)
}

// Address is agent i's address (i from 1): 10.213.b.i.
func (n *netnsNet) Address(i int) string { return fmt.Sprintf("%s.%d.%d", netnsBase, n.block, i) }

func (n *netnsNet) nsName(i int) string   { return fmt.Sprintf("mysos-b%d-a%d", n.block, i) }
func (n *netnsNet) vethName(i int) string { return fmt.Sprintf("msv%da%d", n.block, i) }

// addAgent makes agent i's namespace and connects it to the bridge.
func (n *netnsNet) addAgent(i int) error {
	if i > 253 {
		return fmt.Errorf("netns: at most 253 agents per dev cluster")
	}
	name := n.nsName(i)
	n.state.Namespaces = append(n.state.Namespaces, name)
	n.state.Veths = append(n.state.Veths, n.vethName(i))
	if err := n.save(); err != nil {
		return err
	}
	ns, err := newNamedNetns(name)
	if err != nil {
		return fmt.Errorf("netns: namespace %s: %w", name, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.vethName(i)}, PeerName: n.vethName(i) + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: veth for agent %d: %w", i, err)
	}
	host, err := netlink.LinkByName(veth.Name)
	if err != nil {
		return err
	}
	peer, err := netlink.LinkByName(veth.PeerName)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(host, n.bridge); err != nil {
		return err
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		return err
	}
	if err := n.configureInside(ns, veth.PeerName, i); err != nil {
		return err
	}
	return n.connect(i, true)
}

// configureInside names the agent's end eth0, gives it its address and
// brings it and lo up.
func (n *netnsNet) configureInside(ns netns.NsHandle, peerName string, i int) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	peer, err := h.LinkByName(peerName)
	if err != nil {
		return err
	}
	if err := h.LinkSetName(peer, "eth0"); err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(n.Address(i)).To4(), Mask: n.subnet.Mask}}
	if err := h.AddrAdd(peer, addr); err != nil {
		return err
	}
	if err := h.LinkSetUp(peer); err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// connect brings agent i's bridge port and host route up (or down, cutting
// the agent off from the host and from every other agent).
func (n *netnsNet) connect(i int, up bool) error {
	host, err := netlink.LinkByName(n.vethName(i))
	if err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: n.bridge.Attrs().Index, Scope: netlink.SCOPE_LINK, Src: n.bridgeIP,
		Dst: &net.IPNet{IP: net.ParseIP(n.Address(i)).To4(), Mask: net.CIDRMask(32, 32)}}
	if !up {
		if err := netlink.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("netns: remove the route to agent %d: %w", i, err)
		}
		return netlink.LinkSetDown(host)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netns: route to agent %d: %w", i, err)
	}
	return nil
}

// inAgent runs f on a thread inside agent i's namespace: sockets it
// creates and processes it starts belong to that namespace for good.
func (n *netnsNet) inAgent(i int, f func() error) error {
	ns, err := netns.GetFromName(n.nsName(i))
	if err != nil {
		return fmt.Errorf("netns: agent %d's namespace: %w", i, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// A thread stuck in the agent's namespace must not run other
			// goroutines: leave it locked, and Go ends it with this one.
			runtime.LockOSThread()
		}
	}()
	return f()
}

// newNamedNetns creates a named namespace without leaving the calling
// thread in it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		runtime.LockOSThread() // see inAgent
		return netns.None(), serr
	}
	return ns, err
}

func (n *netnsNet) save() error {
	if n.workDir == "" {
		return nil
	}
	b, err := json.Marshal(n.state)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.workDir, netnsStateFile), b, 0o644)
}

// cleanLeftovers removes whatever carries this block's names: only the
// block's lease holder makes them, so what exists now was left by a dev
// cluster that died holding the lease (kill -9). Cleaning by the leased
// block, not by a state file, never touches a live cluster's objects.
func (n *netnsNet) cleanLeftovers() {
	old := netnsState{Subnet: n.subnet.String(), Bridge: fmt.Sprintf("msb%d", n.block)}
	if entries, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), fmt.Sprintf("mysos-b%d-a", n.block)) {
				old.Namespaces = append(old.Namespaces, e.Name())
			}
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, fmt.Sprintf("msv%da", n.block)) {
				old.Veths = append(old.Veths, l.Attrs().Name)
			}
		}
	}
	if len(old.Namespaces) > 0 || len(old.Veths) > 0 {
		n.log.Info("removing what a dead dev cluster left on this block", "namespaces", strings.Join(old.Namespaces, ","), "veths", strings.Join(old.Veths, ","))
	}
	removeState(old)
}

// close removes every namespace, the bridge (its veths go with it) and,
// last, the blackhole route.
func (n *netnsNet) close() {
	removeState(n.state)
	if n.workDir != "" {
		_ = os.Remove(filepath.Join(n.workDir, netnsStateFile))
	}
}

func removeState(st netnsState) {
	for _, name := range st.Veths {
		if link, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(link) // its peer in the namespace goes with it
		}
	}
	for _, name := range st.Namespaces {
		_ = netns.DeleteNamed(name)
	}
	if link, err := netlink.LinkByName(st.Bridge); err == nil && st.Bridge != "" {
		_ = netlink.LinkDel(link)
	}
	if _, subnet, err := net.ParseCIDR(st.Subnet); err == nil {
		_ = netlink.RouteDel(&netlink.Route{Dst: subnet, Type: unix.RTN_BLACKHOLE})
	}
}

// netnsLauncher starts an agent's executors inside its namespace.
type netnsLauncher struct {
	base  Launcher
	net   *netnsNet
	agent int
}

// Launch forks from a thread inside the agent's namespace; the child
// inherits it.
func (l netnsLauncher) Launch(spec ProcessSpec) (Process, error) {
	var p Process
	err := l.net.inAgent(l.agent, func() error {
		var err error
		p, err = l.base.Launch(spec)
		return err
	})
	return p, err
}

// partitionTable is the nftables table a one-way partition installs in an
// agent's namespace.
const partitionTable = "mysos-partition"

// filter drops everything entering (dir in) or leaving (dir out) agent i's
// namespace through its link, or removes that rule (on false).
func (n *netnsNet) filter(i int, dir Direction, on bool) error {
	ns, err := netns.GetFromName(n.nsName(i))
	if err != nil {
		return err
	}
	defer ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("netns: nftables in agent %d: %w", i, err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: partitionTable}
	if !on {
		conn.DelTable(table)
		if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netns: heal agent %d: %w", i, err)
		}
		return nil
	}
	conn.AddTable(table)
	hook, key := nftables.ChainHookInput, expr.MetaKeyIIFNAME
	if dir == DirectionOut {
		hook, key = nftables.ChainHookOutput, expr.MetaKeyOIFNAME
	}
	chain := conn.AddChain(&nftables.Chain{Name: string(dir), Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: nftables.ChainPriorityFilter})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("eth0")},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("netns: partition agent %d %s: %w", i, dir, err)
	}
	return nil
}

// ifname is an interface name as nftables compares it: NUL-padded to 16.
func ifname(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}
