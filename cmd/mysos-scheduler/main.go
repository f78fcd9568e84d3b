// Command mysos-scheduler runs the Mysos scheduler: the REST API, the store
// (an embedded etcd unless --etcd-endpoints is given) and the reconciler.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/internal/logging"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/scheduler"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() {
	var o scheduler.Options
	var endpoints, logLevel, logFormat, secretFile, routerPorts string
	cmd := &cobra.Command{
		Use:   "mysos-scheduler",
		Short: "Run the Mysos scheduler: REST API, cluster store and reconciler",
		Long: `Run the Mysos scheduler.

By default it starts an embedded single-member etcd in --data-dir; with
--etcd-endpoints it uses an external etcd cluster instead. The API token is
read from --token-file, or generated there on first start; mysosctl finds it
through the mysosctl.yaml written next to it.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(logLevel, logFormat)
			if err != nil {
				return err
			}
			o.Logger = log
			if slices.Equal(o.Anonymous, []string{"none"}) {
				o.Anonymous = []string{}
			}
			if endpoints != "" {
				o.EtcdEndpoints = strings.Split(endpoints, ",")
			}
			o.Version = version
			if o.Router.Ports, err = spec.ParsePortRange(routerPorts); err != nil {
				return fmt.Errorf("--router-ports: %w", err)
			}
			if secretFile != "" {
				secret, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--mesos-secret-file: %w", err)
				}
				o.Mesos.Secret = strings.TrimSpace(string(secret))
			}
			return scheduler.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", scheduler.DefaultDataDir(), "directory for the embedded etcd, the token and mysosctl.yaml")
	f.StringVar(&o.Listen, "listen", scheduler.DefaultListen, "address of the REST API")
	f.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints (default: embedded etcd)")
	f.StringVar(&o.EtcdPrefix, "etcd-prefix", store.DefaultPrefix, "etcd key prefix for everything Mysos stores")
	f.StringVar(&o.EmbeddedClientURL, "embedded-etcd-client-url", scheduler.DefaultEmbeddedClientURL, "client URL of the embedded etcd")
	f.StringVar(&o.EmbeddedPeerURL, "embedded-etcd-peer-url", scheduler.DefaultEmbeddedPeerURL, "peer URL of the embedded etcd")
	f.BoolVar(&o.EmbeddedAllowRemote, "embedded-etcd-allow-remote", false, "let the embedded etcd (no TLS, no authentication) listen on other than loopback addresses")
	f.StringVar(&o.Etcd.CAFile, "etcd-ca-file", "", "CA (PEM) that signed the external etcd's certificates (https endpoints; default: system roots)")
	f.StringVar(&o.Etcd.CertFile, "etcd-cert-file", "", "client certificate (PEM) for an etcd started with --client-cert-auth")
	f.StringVar(&o.Etcd.KeyFile, "etcd-key-file", "", "key of --etcd-cert-file")
	f.StringVar(&o.Etcd.Username, "etcd-user", "", "etcd user to log in as (etcd auth enabled)")
	f.StringVar(&o.Etcd.PasswordFile, "etcd-password-file", "", "file holding --etcd-user's password")
	f.StringVar(&o.TokenFile, "token-file", "", "the admin API token (every namespace) in a file, generated if missing (default <data-dir>/token)")
	f.StringVar(&o.TokensFile, "tokens-file", "", "YAML file of more API tokens with roles (admin, read-only) and namespaces; see docs/security.md")
	f.StringSliceVar(&o.Anonymous, "anonymous", apiserver.DefaultAnonymous, "endpoints served without a token: any of "+strings.Join(apiserver.DefaultAnonymous, ",")+", or none")
	f.StringVar(&o.SecretsKeyFile, "secrets-key-file", "", "key ring that seals MySQL passwords in etcd, generated if missing (default <data-dir>/secrets.key); every scheduler needs the same one")
	f.StringVar(&o.TLS.CertFile, "tls-cert", "", "serve the API over HTTPS with this certificate (PEM, chain first)")
	f.StringVar(&o.TLS.KeyFile, "tls-key", "", "key of --tls-cert (PEM)")
	f.StringVar(&o.TLS.ClientCAFile, "tls-client-ca", "", "require API clients to present a certificate this CA (PEM) signed")
	f.StringVar(&o.MySQLCACert, "mysql-ca-cert", "", "CA certificate (PEM) that signs the MySQL certificates of every cluster with spec.tls (default: a CA generated per cluster)")
	f.StringVar(&o.MySQLCAKey, "mysql-ca-key", "", "key of --mysql-ca-cert (PEM, PKCS#8 or EC; mode 0600)")
	f.StringSliceVar(&o.Mesos.Masters, "master", nil, "Mesos master URL(s), e.g. http://mesos-1:5050,http://mesos-2:5050 (none: serve the API without Mesos)")
	f.StringVar(&o.Mesos.Name, "framework-name", framework.DefaultName, "Mesos framework name")
	f.StringVar(&o.Mesos.Role, "mesos-role", spec.DefaultRole, "Mesos role resources are reserved for")
	f.StringVar(&o.Mesos.Principal, "mesos-principal", "", "Mesos principal to authenticate as")
	f.StringVar(&secretFile, "mesos-secret-file", "", "file holding the Mesos principal's secret (HTTP basic auth)")
	f.StringVar(&o.Mesos.User, "mesos-user", "", "OS user executors run as (default: the scheduler's user)")
	f.DurationVar(&o.Mesos.FailoverTimeout, "failover-timeout", framework.DefaultFailoverTimeout, "how long Mesos keeps the framework's tasks while no scheduler is subscribed")
	f.StringVar(&o.Mesos.Codec, "mesos-codec", "protobuf", "protobuf or json (real Mesos 1.11+ needs protobuf with mesos-go)")
	f.StringVar(&o.Executor.Path, "executor", scheduler.DefaultExecutorPath(), "the mysos-executor binary the scheduler serves to agents (or runs from this path on them with --serve-executor=false)")
	f.BoolVar(&o.ServeExecutor, "serve-executor", true, "serve --executor to agents over HTTP for the Mesos fetcher, guarded by its SHA-256")
	f.StringVar(&o.Executor.URI, "executor-uri", "", "fetch mysos-executor from this URL instead (an artifact store)")
	f.StringVar(&o.Executor.SHA256, "executor-sha256", "", "SHA-256 the executor fetched from --executor-uri must have")
	f.BoolVar(&o.LegacyAPI, "legacy-api", false, "also serve the original Mysos' POST and DELETE /clusters/<name> (form fields, no bearer token: the cluster password guards DELETE)")
	f.StringVar(&o.AdvertiseURL, "advertise-url", "", "this scheduler's base URL as agents reach it (default http://<listen>)")
	f.StringVar(&o.Executor.Workload, "executor-workload", taskspec.WorkloadMySQL, "what each instance's executor runs: mysql, or hold (a placeholder that keeps its volume, for tests)")
	f.Float64Var(&o.Executor.CPUs, "executor-cpus", reconciler.DefaultExecutorCPUs, "cpus reserved per instance for its executor")
	f.Float64Var(&o.Executor.MemMiB, "executor-mem", reconciler.DefaultExecutorMemMiB, "memory (MiB) reserved per instance for its executor")
	f.StringVar(&o.Backups.DefaultDestination, "backup-destination", "", "where clusters without spec.backup.destination keep backups: hdfs://namenode:port/path, or file:///path on a file system the agents share (default file://<data-dir>/backups)")
	f.StringVar(&o.Backups.HadoopUser, "hadoop-user", "mysos", "the user HDFS backup destinations see")
	f.Float64Var(&o.Backups.CPUs, "backup-cpus", reconciler.DefaultBackupCPUs, "cpus of a backup task (besides its executor's)")
	f.Float64Var(&o.Backups.MemMiB, "backup-mem", reconciler.DefaultBackupMemMiB, "memory (MiB) of a backup task (besides its executor's)")
	f.Float64Var(&o.Backups.SegmentSeconds, "binlog-segment-seconds", reconciler.DefaultSegmentSeconds, "how often the binlog archiver ships what it received (spec.backup.binlogArchiving): the most a point-in-time restore can miss of the archive's tail")
	f.DurationVar(&o.RelaunchTimeout, "relaunch-timeout", reconciler.DefaultRelaunchTimeout, "how long a failed instance waits for an offer from its own agent (where its volume is) before it moves to another")
	f.StringVar(&o.Router.Host, "router-host", "", "route the clients of clusters whose spec names router ports (spec.router) on this host's address, e.g. 0.0.0.0 (default: no routers; mysos-router runs them elsewhere)")
	f.StringVar(&routerPorts, "router-ports", spec.DefaultRouterPorts.String(), "the ports spec.router may name (LOW-HIGH): the API refuses others and routers do not open them")
	f.DurationVar(&o.Router.MaxReplicaLag, "router-max-replica-lag", 5*time.Second, "read-only router ports use replicas at most this far behind (0: any replica)")
	f.StringVar(&o.DebugListen, "debug-listen", "", "serve Go's profiles (/debug/pprof/, no authentication) on this address, e.g. 127.0.0.1:6060 (default: off)")
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
