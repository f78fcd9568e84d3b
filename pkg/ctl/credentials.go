package ctl

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newCredentialsCmd(g *globals) *cobra.Command {
	var all bool
	var output, caFile string
	cmd := &cobra.Command{
		Use:   "credentials CLUSTER [USER]",
		Short: "Show the passwords Mysos generated for a cluster's users, and how to connect",
		Long: `Show the passwords Mysos generated for a cluster's users (spec.users), and
a command line to connect to the primary with each. --all adds Mysos' own
accounts (mysos_admin, mysos_repl). Needs an administrator's token.

A cluster with spec.tls serves TLS with certificates its CA signed: --ca-file
writes that CA certificate (public) to a file, -o ca prints it, and the
command lines verify the server with it (--ssl-ca, --ssl-verify-server-cert).`,
		Example: `  mysosctl credentials quickstart
  mysosctl credentials quickstart app -o json
  mysosctl credentials quickstart app --ca-file quickstart-ca.pem`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "password" && output != "ca" {
				return fmt.Errorf("-o %s: use table, json, password or ca", output)
			}
			if output == "password" && len(args) != 2 {
				return fmt.Errorf("-o password prints one user's password: name the USER")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			creds, err := c.Credentials(cmd.Context(), g.namespace, args[0], all)
			if err != nil {
				return err
			}
			if (output == "ca" || caFile != "") && creds.CACert == "" {
				return fmt.Errorf("cluster %s has no CA certificate: it serves no TLS (set spec.tls.enabled), or its first instance has not launched yet", args[0])
			}
			if caFile != "" {
				// The CA certificate is public: readable by all, like a
				// system's trust store.
				if err := os.WriteFile(caFile, []byte(creds.CACert), 0o644); err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
			}
			if output == "ca" {
				_, err := fmt.Fprint(g.out, creds.CACert)
				return err
			}
			if len(args) == 2 {
				users := creds.Users[:0]
				for _, u := range creds.Users {
					if u.User == args[1] {
						users = append(users, u)
					}
				}
				if len(users) == 0 {
					return fmt.Errorf("cluster %s has no user %q with a generated password", args[0], args[1])
				}
				creds.Users = users
			}
			if output == "password" {
				_, err := fmt.Fprintln(g.out, creds.Users[0].Password)
				return err
			}
			if output == "json" {
				raw, err := json.MarshalIndent(creds, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(g.out, string(raw))
				return err
			}
			ca := ""
			if creds.CACert != "" {
				ca = caFile
				if ca == "" {
					ca = args[0] + "-ca.pem"
					fmt.Fprintf(g.errOut, "The servers use TLS: save their CA certificate with --ca-file %s (or -o ca).\n", ca)
				}
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "USER\tPASSWORD\tCONNECT")
			for _, u := range creds.Users {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.User, u.Password, connectLine(creds.Primary, u.User, ca))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include Mysos' own accounts (needs an admin token of every namespace)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json, password (the one USER's password alone, for scripts) or ca (the CA certificate, PEM)")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "write the CA certificate the cluster's servers are verified with (spec.tls) to this file")
	return cmd
}

// connectLine is a ready client command; the password is typed at its
// prompt rather than put on a command line, where ps would show it. With
// caFile (the cluster serves TLS) the client verifies the server's
// certificate and name.
func connectLine(primary, user, caFile string) string {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return "- (no writable primary yet)"
	}
	line := fmt.Sprintf("mariadb -h %s -P %s -u %s -p", host, port, user)
	if caFile != "" {
		line += " --ssl-ca=" + shellWord(caFile) + " --ssl-verify-server-cert"
	}
	return line
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+=:@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
