// Command mysos-devcluster runs a Mesos-compatible master and agents in one
// process, for the demo and the tests: the real v1 scheduler and executor
// HTTP APIs, executors as real local processes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/internal/logging"
	"github.com/mysos-project/mysos/pkg/devcluster"
)

func main() {
	cfg := devcluster.Config{}
	var fast bool
	var logLevel, logFormat, credentials string
	t := devcluster.DefaultTimeouts()
	cmd := &cobra.Command{
		Use:   "mysos-devcluster",
		Short: "Run a Mesos-compatible dev cluster: masters and N agents in one process",
		Long: `Run a Mesos-compatible dev cluster: masters and N agents in one process.

Frameworks connect to http://<listen>/api/v1/scheduler exactly as to a Mesos
master; executors are started as local processes and use the v1 executor API
of their agent. With --masters > 1 the other masters listen on 127.0.0.2,
127.0.0.3, ... and answer 307 to the leader. Faults are injected over HTTP:
GET /devcluster/agents, GET /devcluster/masters,
POST /devcluster/agents/{i}/{stop,restart,partition,heal,gone} (partition takes
?direction=in|out for a one-way cut), POST /devcluster/master/{restart,failover},
POST /devcluster/master/elect/{i|none}. As root, --netns gives each agent a
network namespace of its own and --isolation cgroups limits each container's
CPU and memory. See docs/devcluster.md.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Timeouts = t
			if credentials != "" {
				if cfg.FrameworkCredentials, err = devcluster.LoadCredentials(credentials); err != nil {
					return err
				}
			}
			if fast {
				cfg.Timeouts = devcluster.FastTimeouts()
				// Flags given explicitly still apply on top of --fast.
				fl := cmd.Flags()
				if fl.Changed("agent-reregister-timeout") {
					cfg.Timeouts.AgentReregistration = t.AgentReregistration
				}
				if fl.Changed("master-recovery") {
					cfg.Timeouts.MasterRecovery = t.MasterRecovery
				}
				if fl.Changed("offer-timeout") {
					cfg.Timeouts.OfferTimeout = t.OfferTimeout
				}
			}
			startCtx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			c, err := devcluster.Start(startCtx, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			cfg.Logger.Info("dev cluster running", "master", c.MasterURL(), "masters", c.MasterURLs(),
				"agents", c.AgentCount(), "work-dir", cfg.WorkDir)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:5050", "address of the first master")
	f.IntVar(&cfg.Masters, "masters", 1, "number of masters; the first leads, the others redirect to the leader")
	f.IntVar(&cfg.Agents, "agents", 3, "number of agents")
	f.StringVar(&cfg.AgentResources, "resources", devcluster.DefaultAgentResources, "resources of each agent, in Mesos' syntax")
	f.StringVar(&cfg.AgentAttributes, "attributes", "", "attributes of each agent, e.g. rack:r1;zone:eu-1")
	f.StringVar(&cfg.WorkDir, "work-dir", "/tmp/mysos-devcluster", "agents' work dirs (sandboxes, volumes, checkpoints)")
	f.BoolVar(&fast, "fast", false, "test timeouts: failures detected in about a second")
	f.StringVar(&cfg.Isolation, "isolation", "posix", "posix (no limits, Mesos' default) or cgroups (CPU shares and quota, memory limits per container)")
	f.StringVar(&credentials, "credentials", "", `authenticate schedulers (HTTP basic) against this file, in Mesos' format {"credentials": [{"principal": "p", "secret": "s"}]}`)
	f.BoolVar(&cfg.Netns, "netns", false, "give every agent a network namespace of its own on a private subnet (root only; see docs/devcluster.md)")
	f.DurationVar(&t.Heartbeat, "heartbeat-interval", t.Heartbeat, "scheduler HEARTBEAT interval")
	f.DurationVar(&t.AgentPing, "agent-ping-timeout", t.AgentPing, "agent health check interval")
	f.IntVar(&t.MaxAgentPings, "max-agent-ping-timeouts", t.MaxAgentPings, "missed pings before an agent is unreachable")
	f.DurationVar(&t.ExecutorRegistration, "executor-registration-timeout", t.ExecutorRegistration, "time an executor has to subscribe")
	f.DurationVar(&t.ExecutorShutdownGrace, "executor-shutdown-grace-period", t.ExecutorShutdownGrace, "time an executor has to exit after SHUTDOWN")
	f.DurationVar(&t.AgentReregistration, "agent-reregister-timeout", t.AgentReregistration, "time agents have to re-register with a new leading master")
	f.DurationVar(&t.MasterRecovery, "master-recovery", t.MasterRecovery, "time a new leading master answers 503 to scheduler calls (0: none)")
	f.DurationVar(&t.OfferTimeout, "offer-timeout", t.OfferTimeout, "rescind offers held longer (0: never)")
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
