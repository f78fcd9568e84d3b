package ctl

import (
	"encoding/json"
	"fmt"
	"net"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newCredentialsCmd(g *globals) *cobra.Command {
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:   "credentials CLUSTER [USER]",
		Short: "Show the passwords Mysos generated for a cluster's users, and how to connect",
		Long: `Show the passwords Mysos generated for a cluster's users (spec.users), and
a command line to connect to the primary with each. --all adds Mysos' own
accounts (mysos_admin, mysos_repl). Needs an administrator's token.`,
		Example: `  mysosctl credentials quickstart
  mysosctl credentials quickstart app -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "password" {
				return fmt.Errorf("-o %s: use table, json or password", output)
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
			tw := tabwriter.NewWriter(g.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "USER\tPASSWORD\tCONNECT")
			for _, u := range creds.Users {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.User, u.Password, connectLine(creds.Primary, u.User))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include Mysos' own accounts")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json, or password (the one USER's password alone, for scripts)")
	return cmd
}

// connectLine is a ready client command; the password is typed at its
// prompt rather than put on a command line, where ps would show it.
func connectLine(primary, user string) string {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return "- (no writable primary yet)"
	}
	return fmt.Sprintf("mariadb -h %s -P %s -u %s -p", host, port, user)
}
