// Command mysos-router forwards MySQL clients to one Mysos cluster's
// current primary (read-write port) or replicas (read-only port), following
// the discovery record the scheduler publishes in etcd. See docs/router.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/internal/logging"
	"github.com/mysos-project/mysos/pkg/router"
	"github.com/mysos-project/mysos/pkg/scheduler"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

var version = "dev"

func main() {
	var o router.Options
	var endpoints, cluster, logLevel, logFormat, routerPorts string
	cmd := &cobra.Command{
		Use:   "mysos-router (--cluster NAME --rw-listen HOST:PORT --ro-listen HOST:PORT | --router-host HOST)",
		Short: "Route MySQL clients to a Mysos cluster's primary and replicas",
		Long: `Route MySQL clients to a Mysos cluster.

The read-write port forwards each connection to the cluster's current
primary; the read-only port to a replica whose lag is within
--max-replica-lag (round robin), or to the primary when none is. The router
follows the discovery record the scheduler keeps in etcd: when the primary
changes it closes every read-write connection to the old one, and while a
failover or switchover is under way it refuses read-write connections. It
copies bytes and does not parse the MySQL protocol, so any client works.

With --router-host instead of --cluster, it routes every cluster whose spec
names router ports (spec.router) on that address, following the specs as a
scheduler started with --router-host does: a routing tier of its own.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(logLevel, logFormat)
			if err != nil {
				return err
			}
			o.Log = log
			o.Etcd.Endpoints = strings.Split(endpoints, ",")
			if o.Ports, err = spec.ParsePortRange(routerPorts); err != nil {
				return fmt.Errorf("--router-ports: %w", err)
			}
			if ns, name, ok := strings.Cut(cluster, "/"); ok {
				o.Namespace, o.Name = ns, name
			} else {
				o.Name = cluster
			}
			return router.Serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoints, "etcd-endpoints", scheduler.DefaultEmbeddedClientURL, "comma-separated etcd endpoints (the scheduler's embedded etcd by default)")
	f.StringVar(&o.EtcdPrefix, "etcd-prefix", store.DefaultPrefix, "etcd key prefix the scheduler uses")
	f.StringVar(&o.Etcd.CAFile, "etcd-ca-file", "", "CA (PEM) that signed etcd's certificates (https endpoints)")
	f.StringVar(&o.Etcd.CertFile, "etcd-cert-file", "", "client certificate (PEM) for an etcd started with --client-cert-auth")
	f.StringVar(&o.Etcd.KeyFile, "etcd-key-file", "", "key of --etcd-cert-file")
	f.StringVar(&o.Etcd.Username, "etcd-user", "", "etcd user to log in as (read access to the discovery prefix is enough)")
	f.StringVar(&o.Etcd.PasswordFile, "etcd-password-file", "", "file holding --etcd-user's password")
	f.StringVar(&cluster, "cluster", "", "the cluster to route to: NAME, or NAMESPACE/NAME")
	f.StringVarP(&o.Namespace, "namespace", "n", spec.DefaultNamespace, "the cluster's namespace (when --cluster has none)")
	f.StringVar(&o.RWListen, "rw-listen", "", "read-write port, e.g. 127.0.0.1:6446")
	f.StringVar(&o.ROListen, "ro-listen", "", "read-only port, e.g. 127.0.0.1:6447")
	f.StringVar(&o.HTTPListen, "http-listen", "127.0.0.1:6448", "/metrics, /healthz and /readyz (empty: off)")
	f.StringVar(&o.SpecHost, "router-host", "", "instead of --cluster and its ports: route every cluster whose spec names router ports (spec.router), on this host's address, as a scheduler's --router-host does")
	f.StringVar(&routerPorts, "router-ports", spec.DefaultRouterPorts.String(), "with --router-host: the ports it may open (LOW-HIGH)")
	f.DurationVar(&o.MaxReplicaLag, "max-replica-lag", 5*time.Second, "the read-only port uses replicas at most this far behind (0: any replica)")
	f.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long open connections may go on before they are closed")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text, or json (one object per line)")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
