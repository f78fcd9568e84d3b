// Package ctl implements mysosctl, the command line of Mysos. It talks to the
// scheduler's REST API (pkg/client) and never to etcd, and it follows
// kubectl's conventions: apply/get/describe/delete/diff/wait, -o yaml|json,
// -n/--namespace, -l selectors, and one line per object saying what happened.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// ExitError carries a specific exit status (diff exits 1 when it finds
// differences, for instance).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// DefaultServer is where the scheduler listens unless told otherwise.
const DefaultServer = "http://127.0.0.1:55001"

// globals are the flags every command shares.
type globals struct {
	server, token, tokenFile, configPath string
	caFile, certFile, keyFile            string
	namespace                            string
	namespaceSet                         bool
	out, errOut                          io.Writer
	in                                   io.Reader
}

// Execute runs mysosctl with args and returns the process exit status.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{out: stdout, errOut: stderr, in: stdin}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintln(stderr, "error:", exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintln(stderr, "error:", err)
	return 1
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "mysosctl",
		Short: "mysosctl controls MySQL clusters run by Mysos on Apache Mesos",
		Long: `mysosctl controls MySQL clusters run by Mysos on Apache Mesos.

It finds the scheduler from --server/--token (or --token-file), else from the
environment (MYSOS_SERVER, MYSOS_TOKEN, MYSOS_TOKEN_FILE), else from the config
file (--config, $MYSOS_CONFIG, ~/.mysos/config.yaml, or the mysosctl.yaml the
scheduler writes into its data dir, ~/.mysos/scheduler by default).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			g.namespaceSet = cmd.Flags().Changed("namespace")
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "scheduler API URL (default "+DefaultServer+")")
	pf.StringVar(&g.token, "token", "", "bearer token for the API")
	pf.StringVar(&g.tokenFile, "token-file", "", "file holding the bearer token")
	pf.StringVar(&g.configPath, "config", "", "mysosctl config file")
	pf.StringVar(&g.caFile, "certificate-authority", "", "PEM file of the CA that signed the API's certificate (https; default: the system's roots)")
	pf.StringVar(&g.certFile, "client-certificate", "", "client certificate for a scheduler started with --tls-client-ca")
	pf.StringVar(&g.keyFile, "client-key", "", "key of --client-certificate")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace (default \"default\")")
	root.AddCommand(
		newApplyCmd(g), newGetCmd(g), newDescribeCmd(g), newDeleteCmd(g),
		newDiffCmd(g), newWaitCmd(g), newCredentialsCmd(g), newSwitchoverCmd(g), newFailoverCmd(g),
		newEventsCmd(g), newReseedCmd(g), newBackupCmd(g), newTokenCmd(g), newWhoAmICmd(g), newQuotaCmd(g), newVersionCmd(g),
	)
	return root
}

// client resolves the connection settings and returns an API client.
func (g *globals) client() (*client.Client, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	server := firstNonEmpty(g.server, os.Getenv("MYSOS_SERVER"), cfg.Server, DefaultServer)
	token := firstNonEmpty(g.token, os.Getenv("MYSOS_TOKEN"))
	if token == "" {
		if file := firstNonEmpty(g.tokenFile, os.Getenv("MYSOS_TOKEN_FILE")); file != "" {
			if token, err = client.ReadTokenFile(file); err != nil {
				return nil, err
			}
		} else if cfg.Token != "" {
			token = cfg.Token
		} else if cfg.TokenFile != "" {
			if token, err = client.ReadTokenFile(cfg.TokenFile); err != nil {
				return nil, err
			}
		}
	}
	if g.namespace == "" {
		g.namespace = firstNonEmpty(os.Getenv("MYSOS_NAMESPACE"), cfg.Namespace, spec.DefaultNamespace)
	}
	tlsFiles := client.TLSFiles{
		CAFile:   firstNonEmpty(g.caFile, os.Getenv("MYSOS_CA_FILE"), cfg.CertificateAuthority),
		CertFile: firstNonEmpty(g.certFile, cfg.ClientCertificate),
		KeyFile:  firstNonEmpty(g.keyFile, cfg.ClientKey),
	}
	return client.New(server, token, tlsFiles)
}

// loadConfig reads the first config file that exists, in order of precedence.
func (g *globals) loadConfig() (client.Config, error) {
	if explicit := firstNonEmpty(g.configPath, os.Getenv("MYSOS_CONFIG")); explicit != "" {
		cfg, found, err := client.LoadConfig(explicit)
		if err == nil && !found {
			err = fmt.Errorf("config file %s does not exist", explicit)
		}
		return cfg, err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return client.Config{}, nil
	}
	for _, p := range []string{
		filepath.Join(home, ".mysos", "config.yaml"),
		filepath.Join(home, ".mysos", "scheduler", "mysosctl.yaml"),
	} {
		cfg, found, err := client.LoadConfig(p)
		if err != nil || found {
			return cfg, err
		}
	}
	return client.Config{}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.out, "Client Version: %s\n", Version)
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Server Version: %s\n", v)
			return nil
		},
	}
}

// Version is set by the linker (-X) at build time.
var Version = "dev"
