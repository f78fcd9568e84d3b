package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// backupPollInterval is how often backup create --wait looks.
const backupPollInterval = 500 * time.Millisecond

type backupOptions struct {
	output      string
	destination string
	wait        bool
	timeout     time.Duration
}

func newBackupCmd(g *globals) *cobra.Command {
	o := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take, list, describe and delete a cluster's backups",
		Long: `Take, list, describe and delete a cluster's full backups.

A backup is a consistent logical copy of a healthy replica (the primary
when no replica is), compressed, with its GTID position and a checksum,
kept in the cluster's spec.backup.destination (HDFS or a directory) beside
a manifest. Backups outlive their cluster: list a deleted cluster's with
--destination. Restore one by creating a cluster with
spec.restore.from: CLUSTER/BACKUP-ID.`,
	}
	create := &cobra.Command{
		Use:   "create CLUSTER",
		Short: "Take a backup now",
		Example: `  mysosctl backup create quickstart
  mysosctl backup create quickstart --wait=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBackupCreate(cmd.Context(), g, o, args[0]) },
	}
	create.Flags().BoolVar(&o.wait, "wait", true, "wait until the backup is complete or failed")
	create.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "with --wait, give up waiting after this long (the backup goes on)")
	list := &cobra.Command{
		Use:     "list CLUSTER",
		Short:   "List a cluster's backups, oldest first",
		Example: "  mysosctl backup list quickstart\n  mysosctl backup list old-shop --destination hdfs://namenode:8020/mysos/backups",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runBackupList(cmd.Context(), g, o, args[0]) },
	}
	describe := &cobra.Command{
		Use:   "describe CLUSTER BACKUP-ID",
		Short: "Show one backup: its position, size, checksum and databases",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupDescribe(cmd.Context(), g, o, args[0], args[1])
		},
	}
	del := &cobra.Command{
		Use:   "delete CLUSTER BACKUP-ID",
		Short: "Delete a backup from its destination",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupDelete(cmd.Context(), g, o, args[0], args[1])
		},
	}
	for _, c := range []*cobra.Command{list, describe, del} {
		c.Flags().StringVar(&o.destination, "destination", "", "the backup destination URL (default: the cluster's)")
	}
	for _, c := range []*cobra.Command{list, describe} {
		c.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	}
	cmd.AddCommand(create, list, describe, del)
	return cmd
}

func runBackupCreate(ctx context.Context, g *globals, o *backupOptions, name string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	b, err := c.CreateBackup(ctx, g.namespace, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s backup %s requested (to %s)\n", name, b.ID, b.Destination)
	if !o.wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	done, err := awaitBackup(ctx, c, g.namespace, name, b.ID)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s waiting for backup %s of %s; it goes on: mysosctl backup describe %s %s",
			o.timeout, b.ID, name, name, b.ID)
	}
	if err != nil {
		return err
	}
	if done.Phase == spec.BackupPhaseFailed {
		return fmt.Errorf("backup %s of %s failed: %s", b.ID, name, done.Message)
	}
	fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s backup %s complete: %s of %s in %s at GTID position %s\n",
		name, done.ID, humanBytes(done.Size), done.Instance, done.Duration, done.GTIDPosition)
	return nil
}

// awaitBackup polls until the backup is complete or failed.
func awaitBackup(ctx context.Context, c *client.Client, ns, name, id string) (*spec.Backup, error) {
	tick := time.NewTicker(backupPollInterval)
	defer tick.Stop()
	for {
		b, err := c.Backup(ctx, ns, name, id, "")
		if err == nil && (b.Phase == spec.BackupPhaseComplete || b.Phase == spec.BackupPhaseFailed) {
			return b, nil
		}
		if err != nil && !client.IsNotFound(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func runBackupList(ctx context.Context, g *globals, o *backupOptions, name string) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	items, err := c.Backups(ctx, g.namespace, name, o.destination)
	if err != nil {
		return err
	}
	if o.output != "table" {
		if items == nil {
			items = []spec.Backup{}
		}
		return printStructured(g.out, spec.BackupList{APIVersion: "v1", Kind: "BackupList", Items: items}, o.output)
	}
	if len(items) == 0 {
		fmt.Fprintf(g.out, "No backups of %s found.\n", name)
		return nil
	}
	printBackups(g.out, items)
	return nil
}

func printBackups(w io.Writer, items []spec.Backup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPHASE\tINSTANCE\tFINISHED\tSIZE\tDURATION\tGTID POSITION")
	for _, b := range items {
		size := "-"
		if b.Size > 0 {
			size = humanBytes(b.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Phase, orDash(b.Instance), timestamp(b.FinishedAt),
			size, orDash(b.Duration), orDash(b.GTIDPosition))
	}
	_ = tw.Flush()
}

func runBackupDescribe(ctx context.Context, g *globals, o *backupOptions, name, id string) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	b, err := c.Backup(ctx, g.namespace, name, id, o.destination)
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printStructured(g.out, b, o.output)
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("ID", b.ID)
	row("Cluster", b.Namespace+"/"+b.Cluster)
	row("Phase", b.Phase)
	row("Trigger", b.Trigger)
	row("Instance", b.Instance)
	row("Destination", b.Destination)
	row("Started", timestamp(b.StartedAt))
	row("Finished", timestamp(b.FinishedAt))
	row("Duration", b.Duration)
	if b.Size > 0 {
		row("Size", fmt.Sprintf("%s (%s before compression)", humanBytes(b.Size), humanBytes(b.RawSize)))
	}
	row("SHA-256", b.SHA256)
	row("GTID Position", b.GTIDPosition)
	row("Server", strings.TrimSpace(b.Flavor+" "+b.ServerVersion))
	row("Databases", strings.Join(b.Databases, ", "))
	row("Message", b.Message)
	if b.Phase == spec.BackupPhaseComplete {
		row("Restore With", fmt.Sprintf("spec.restore.from: %s/%s", b.Cluster, b.ID))
	}
	return tw.Flush()
}

func runBackupDelete(ctx context.Context, g *globals, o *backupOptions, name, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	b, err := c.DeleteBackup(ctx, g.namespace, name, id, o.destination)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "mysqlcluster.mysos.io/%s backup %s deleted from %s\n", name, b.ID, b.Destination)
	return nil
}

func checkOutput(output string) error {
	if output != "table" && output != "json" && output != "yaml" {
		return fmt.Errorf("-o %s: use table, json or yaml", output)
	}
	return nil
}
