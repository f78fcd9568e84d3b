package apiserver

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

//go:embed templates/status.html
var templates embed.FS

var statusPage = template.Must(template.ParseFS(templates, "templates/status.html"))

// statusRefresh is how often the status page reloads itself.
const statusRefresh = 5

// eventsOnPage is how many recent events each cluster shows.
const eventsOnPage = 8

// pageView is what the status page shows.
type pageView struct {
	Refresh  int
	Now      string
	Mesos    string
	Clusters []clusterView
}

type clusterView struct {
	Key, Phase, Ready, Primary, Endpoint, Operation, LastBackup, Reason string
	Instances                                                           []instanceView
	Events                                                              []eventView
}

type instanceView struct{ Name, Role, State, Address, ReadOnly, Lag, GTID string }

type eventView struct{ Time, Type, Reason, Instance, Message string }

// statusPageHandler serves a page a person reads at a glance: every cluster,
// its instances with their roles and lag, its recent events. It refreshes
// itself and loads nothing from elsewhere. It needs no token, like
// /healthz, and shows no secret.
func (s *Server) statusPageHandler(w http.ResponseWriter, r *http.Request) {
	clusters, _, err := s.cfg.Store.List(r.Context(), "")
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	view := pageView{Refresh: statusRefresh, Now: time.Now().UTC().Format(time.RFC3339), Mesos: s.mesosState(r.Context())}
	for _, c := range clusters {
		if !visible(r, c.Metadata.Namespace) {
			continue
		}
		view.Clusters = append(view.Clusters, s.clusterView(r.Context(), c))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusPage.Execute(w, view); err != nil {
		s.log.Warn("status page", "err", err)
	}
}

func (s *Server) mesosState(ctx context.Context) string {
	for _, c := range s.cfg.Checks {
		if c.Name == "mesos" {
			if err := c.Run(ctx); err != nil {
				return err.Error()
			}
			return "subscribed"
		}
	}
	return "unknown"
}

func (s *Server) clusterView(ctx context.Context, c *spec.MySQLCluster) clusterView {
	st := c.Status
	v := clusterView{Key: c.Key(), Phase: orNone(string(st.Phase)), Primary: orNone(st.CurrentPrimary), Operation: "none", LastBackup: "none"}
	if c.Spec.Replicas != nil {
		v.Ready = fmt.Sprintf("%d/%d", st.ReadyReplicas, *c.Spec.Replicas)
	}
	if e := st.Endpoints; e != nil {
		v.Endpoint = e.Primary
	}
	if op := st.Operation; op != nil {
		v.Operation = fmt.Sprintf("%s %s → %s (%s)", op.Kind, op.From, op.To, op.Step)
	}
	if b := st.Backup; b != nil && b.Last != nil && b.Last.FinishedAt != nil {
		v.LastBackup = fmt.Sprintf("%s (%s ago)", b.Last.ID, time.Since(*b.Last.FinishedAt).Round(time.Second))
	}
	if ready := st.FindCondition(spec.ConditionReady); ready != nil {
		v.Reason = ready.Reason + ": " + ready.Message
	}
	for _, in := range st.Instances {
		v.Instances = append(v.Instances, instanceOf(in, st))
	}
	if s.cfg.Events != nil {
		events, err := s.cfg.Events.ListEvents(ctx, c.Metadata.Namespace, c.Metadata.Name)
		if err == nil {
			for _, ev := range slices.Backward(events) {
				if len(v.Events) == eventsOnPage {
					break
				}
				v.Events = append(v.Events, eventView{Time: ev.Time.UTC().Format("15:04:05.000"), Type: ev.Type,
					Reason: ev.Reason, Instance: ev.Instance, Message: ev.Message})
			}
		}
	}
	return v
}

func instanceOf(in spec.InstanceStatus, st spec.ClusterStatus) instanceView {
	v := instanceView{Name: in.Name, Role: orNone(in.Role), State: orNone(in.State), GTID: in.GTIDExecuted, Lag: "-", ReadOnly: "-"}
	if slices.Contains(st.ErrantInstances, in.Name) {
		v.Role = "errant"
	}
	if in.Host != "" {
		v.Address = fmt.Sprintf("%s:%d", in.Host, in.Port)
	}
	if in.ReadOnly != nil {
		v.ReadOnly = fmt.Sprint(*in.ReadOnly)
	}
	if r := in.Replication; r != nil && r.SecondsBehind != nil {
		v.Lag = fmt.Sprintf("%d s", *r.SecondsBehind)
	}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
