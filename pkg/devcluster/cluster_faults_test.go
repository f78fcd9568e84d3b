package devcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func cfStart(t *testing.T, masters, agents int, to Timeouts) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Listen: "127.0.0.1:0", Masters: masters, Agents: agents, WorkDir: t.TempDir(),
		Timeouts: to, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// cfDo sends a request without following redirects.
func cfDo(t *testing.T, method, u, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", mediaJSON)
		req.Header.Set("Accept", mediaJSON)
	}
	// No keep-alive: a connection to a master that lost leadership is
	// closed under the client's feet.
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// hostOf is "//host:port" of a base URL, the form of Mesos' Location.
func hostOf(base string) string { return strings.TrimPrefix(base, "http:") }

func TestP1StandbyRedirects(t *testing.T) {
	c := cfStart(t, 3, 0, FastTimeouts())
	urls := c.MasterURLs()
	if len(urls) != 3 || urls[0] != c.MasterURL() || c.Leader() != 0 || c.LeaderURL() != urls[0] {
		t.Fatalf("MasterURLs %v, MasterURL %s, leader %d", urls, c.MasterURL(), c.Leader())
	}
	seen := map[string]bool{}
	for _, u := range urls {
		h, _ := url.Parse(u)
		if seen[h.Hostname()] {
			t.Fatalf("two masters on %s: %v", h.Hostname(), urls)
		}
		seen[h.Hostname()] = true
	}
	sub := mtSubscribeBody(mtFwInfoPA)
	for _, standby := range urls[1:] {
		code, body, h := cfDo(t, http.MethodPost, standby+schedulerPath, sub)
		if code != http.StatusTemporaryRedirect || h.Get("Location") != hostOf(urls[0])+schedulerPath || body != "" {
			t.Fatalf("standby SUBSCRIBE: %d %q Location %q, want 307 to %s", code, body, h.Get("Location"), hostOf(urls[0])+schedulerPath)
		}
		// Any call, valid or not, is redirected first.
		if code, _, _ := cfDo(t, http.MethodGet, standby+schedulerPath, ""); code != http.StatusTemporaryRedirect {
			t.Fatalf("standby GET scheduler: %d, want 307", code)
		}
		if code, _, h := cfDo(t, http.MethodGet, standby+"/master/state", ""); code != http.StatusTemporaryRedirect ||
			h.Get("Location") != hostOf(urls[0])+"/master/state" {
			t.Fatalf("standby state: %d %q", code, h.Get("Location"))
		}
		if code, _, _ := cfDo(t, http.MethodGet, standby+"/version", ""); code != http.StatusOK {
			t.Fatalf("standby /version: %d", code)
		}
	}
	// /master/redirect names the leader's bare address, from any master
	// (transcript 05), and paths below it are 404.
	for _, u := range urls {
		code, _, h := cfDo(t, http.MethodGet, u+"/master/redirect", "")
		if code != http.StatusTemporaryRedirect || h.Get("Location") != hostOf(urls[0]) {
			t.Fatalf("%s/master/redirect: %d %q, want 307 to %s", u, code, h.Get("Location"), hostOf(urls[0]))
		}
		if code, _, _ := cfDo(t, http.MethodGet, u+"/master/redirect/x", ""); code != http.StatusNotFound {
			t.Fatalf("%s/master/redirect/x: %d, want 404", u, code)
		}
	}

	// No leader: 503 everywhere.
	if err := c.ElectMaster(-1); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		code, body, _ := cfDo(t, http.MethodPost, u+schedulerPath, sub)
		if code != http.StatusServiceUnavailable || body != "No leader elected" {
			t.Fatalf("%s without leader: %d %q, want 503 No leader elected", u, code, body)
		}
		if code, _, _ := cfDo(t, http.MethodGet, u+"/master/redirect", ""); code != http.StatusServiceUnavailable {
			t.Fatalf("%s/master/redirect without leader: %d, want 503", u, code)
		}
	}

	// Elect the last one through the control API of another master.
	if code, body, _ := cfDo(t, http.MethodPost, urls[1]+"/devcluster/master/elect/2", ""); code != http.StatusNoContent {
		t.Fatalf("elect: %d %s", code, body)
	}
	code, _, h := cfDo(t, http.MethodPost, urls[0]+schedulerPath, sub)
	if code != http.StatusTemporaryRedirect || h.Get("Location") != hostOf(urls[2])+schedulerPath {
		t.Fatalf("after election: %d Location %q, want %s", code, h.Get("Location"), hostOf(urls[2])+schedulerPath)
	}
	tm := &mtTestMaster{m: c.Master(), url: urls[2] + schedulerPath}
	tm.subscribeJSON(t, sub)
	// Failover wraps around to the first master.
	if code, _, _ := cfDo(t, http.MethodPost, urls[0]+"/devcluster/master/failover", ""); code != http.StatusNoContent || c.Leader() != 0 {
		t.Fatalf("failover: %d, leader %d", code, c.Leader())
	}
}

// cfMesosGoSubscribe subscribes with mesos-go's httpsched client and returns
// the SUBSCRIBED event and the open response.
func cfMesosGoSubscribe(t *testing.T, ctx context.Context, endpoint string) (*scheduler.Event, mesos.Response) {
	t.Helper()
	ev, resp, err := cfMesosGoSubscribeErr(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return ev, resp
}

func cfMesosGoSubscribeErr(ctx context.Context, endpoint string) (*scheduler.Event, mesos.Response, error) {
	cli := httpcli.New(
		httpcli.Endpoint(endpoint+schedulerPath),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(30*time.Second))),
	)
	caller := httpsched.NewCaller(cli)
	info := &mesos.FrameworkInfo{User: "root", Name: "mesos-go", Roles: []string{"mysos"},
		FailoverTimeout: proto.Float64(60),
		Capabilities:    []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}
	resp, err := caller.Call(ctx, calls.Subscribe(info))
	if err != nil {
		return nil, nil, fmt.Errorf("mesos-go SUBSCRIBE: %w", err)
	}
	var ev scheduler.Event
	if err := resp.Decode(&ev); err != nil {
		resp.Close()
		return nil, nil, fmt.Errorf("mesos-go decode: %w", err)
	}
	if ev.Type != scheduler.Event_SUBSCRIBED {
		resp.Close()
		return nil, nil, fmt.Errorf("first event %v, want SUBSCRIBED", ev.Type)
	}
	return &ev, resp, nil
}

// A mesos-go client configured with the first master follows the standby's
// 307 to the leader after a failover, and gets the leader's offers.
func TestP1MesosGoFollowsRedirect(t *testing.T) {
	c := cfStart(t, 2, 1, FastTimeouts())
	if err := c.FailoverMaster(); err != nil {
		t.Fatal(err)
	}
	if c.Leader() != 1 {
		t.Fatalf("leader %d after failover, want 1", c.Leader())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, resp := cfMesosGoSubscribe(t, ctx, c.MasterURL())
	defer resp.Close()
	leader, _ := url.Parse(c.MasterURLs()[1])
	mi := ev.Subscribed.MasterInfo
	if mi == nil || mi.GetHostname() != leader.Hostname() || leader.Port() != itoa(int(mi.GetPort())) {
		t.Fatalf("SUBSCRIBED from %v, want the leader %s", mi, leader.Host)
	}
	for {
		var e scheduler.Event
		if err := resp.Decode(&e); err != nil {
			t.Fatalf("no offer from the re-registered agent: %v", err)
		}
		if e.Type == scheduler.Event_OFFERS {
			if got := e.Offers.Offers[0].AgentID.Value; got != c.Agents()[0].ID {
				t.Fatalf("offer from agent %s, want %s", got, c.Agents()[0].ID)
			}
			return
		}
	}
}

// After a master restart the new master answers 503 while an agent of its
// registry is missing; mesos-go retries and subscribes once it is back.
func TestP1RecoveryServiceUnavailableThenSubscribe(t *testing.T) {
	to := FastTimeouts()
	to.MasterRecovery = time.Minute
	to.AgentReregistration = time.Minute
	c := cfStart(t, 1, 2, to)
	if err := c.StopAgent(1); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	code, body, _ := cfDo(t, http.MethodPost, c.MasterURL()+schedulerPath, mtSubscribeBody(mtFwInfoPA))
	if code != http.StatusServiceUnavailable || body != "Master has not finished recovery" {
		t.Fatalf("SUBSCRIBE while recovering: %d %q, want 503", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		ev   *scheduler.Event
		resp mesos.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ev, resp, err := cfMesosGoSubscribeErr(ctx, c.MasterURL())
		done <- result{ev, resp, err}
	}()
	// The client is refused until the agent is back.
	waitFor(t, "agent 0 to re-register", func() bool { _, n := c.Master().Recovering(); return n == 1 })
	select {
	case r := <-done:
		if r.err == nil {
			r.resp.Close()
		}
		t.Fatalf("SUBSCRIBE returned while the master was recovering: %v", r.err)
	default:
	}
	if err := c.RestartAgent(1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.resp.Close()
		if r.ev.Subscribed.MasterInfo.GetID() != c.Master().ID() {
			t.Fatal("subscribed to another master")
		}
	case <-ctx.Done():
		t.Fatal("mesos-go did not subscribe after recovery")
	}
}

// Marking an agent gone through the control API: the agent is refused,
// also after a restart and by a new master, and keeps its work dir.
func TestP1ClusterAgentGone(t *testing.T) {
	c := cfStart(t, 1, 2, FastTimeouts())
	id := c.Agents()[0].ID
	if code, body, _ := cfDo(t, http.MethodPost, c.MasterURL()+"/devcluster/agents/0/gone", ""); code != http.StatusNoContent {
		t.Fatalf("gone: %d %s", code, body)
	}
	waitFor(t, "agent 0 to be refused", func() bool { return c.Agent(0).Refused() })
	if s := c.Agents()[0]; !s.Gone || s.ID != id {
		t.Fatalf("summary %+v", s)
	}
	if err := c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restarted agent 0 to be refused", func() bool { return c.Agent(0).Refused() })
	if c.Agent(0).ID() != id {
		t.Fatal("the restarted agent lost its id")
	}
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent 1 to re-register", func() bool { refusing, n := c.Master().Recovering(); return !refusing && n == 0 })
	if err := c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent 0 to be refused by the new master", func() bool { return c.Agent(0).Refused() })
	if err := c.MarkAgentGone(0); err != nil {
		t.Fatalf("marking a gone agent gone again: %v", err)
	}
}
