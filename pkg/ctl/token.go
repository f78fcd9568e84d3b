package ctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

func newTokenCmd(g *globals) *cobra.Command {
	var role, output string
	var namespaces []string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and delete API tokens (admin of every namespace only)",
		Long: `Create, list and delete the scheduler's API tokens.

A token has a role, admin (everything, including reading passwords) or
read-only, and may be limited to namespaces: a team's token then sees and
changes only its own. The secret is shown once, when the token is created;
the scheduler keeps only its SHA-256. Tokens defined in the scheduler's
--token-file and --tokens-file are listed too but are changed there.`,
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print its secret (shown only now)",
		Example: `  mysosctl token create ci --role admin --namespace shop
  mysosctl token create grafana --role read-only`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), spec.APIToken{Name: args[0], Role: role, Namespaces: namespaces})
			if err != nil {
				return err
			}
			if output != "table" {
				return printStructured(g.out, t, output)
			}
			fmt.Fprintf(g.out, "token/%s created (role %s, %s). Its secret, shown only now:\n%s\n", t.Name, t.Role, scope(*t), t.Token)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "admin or read-only (required)")
	create.Flags().StringSliceVar(&namespaces, "namespace-scope", nil, "limit the token to these namespaces (repeat or comma-separate; default every namespace)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (names, roles, namespaces; never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd.Context(), g, output, func(c *client.Client, ctx context.Context) (spec.APITokenList, error) {
				items, err := c.Tokens(ctx)
				return spec.APITokenList{APIVersion: spec.APIVersion, Kind: spec.APITokenListKind, Items: items}, err
			}, func(list spec.APITokenList) error {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tNAMESPACES\tSOURCE\tCREATED")
				for _, t := range list.Items {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, scope(t), t.Source, orDash(t.CreationTimestamp))
				}
				return tw.Flush()
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Revoke a token: requests with it fail at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.DeleteToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token/%s deleted\n", args[0])
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, list} {
		c.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func newWhoAmICmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the token mysosctl uses: its name, role and namespaces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd.Context(), g, output, (*client.Client).WhoAmI, func(t *spec.APIToken) error {
				_, err := fmt.Fprintf(g.out, "token %s, role %s, %s (from %s)\n", t.Name, t.Role, scope(*t), t.Source)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// show runs a read command: it checks -o, gets the object with a client,
// and prints it as JSON or YAML, or with table for the table format.
func show[T any](ctx context.Context, g *globals, output string, get func(*client.Client, context.Context) (T, error), table func(T) error) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	v, err := get(c, ctx)
	if err != nil {
		return err
	}
	if output != "table" {
		return printStructured(g.out, v, output)
	}
	return table(v)
}

func scope(t spec.APIToken) string {
	if t.AllNamespaces() {
		return "every namespace"
	}
	return "namespaces " + strings.Join(t.Namespaces, ",")
}
