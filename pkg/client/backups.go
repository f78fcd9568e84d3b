package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mysos-project/mysos/pkg/spec"
)

// CreateBackup asks for an on-demand backup of a cluster; it is Pending
// until the scheduler launches its task.
func (c *Client) CreateBackup(ctx context.Context, ns, name string) (*spec.Backup, error) {
	var out spec.Backup
	if err := c.do(ctx, http.MethodPost, clusterPath(ns, name)+"/backups", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Backups lists a cluster's backups, oldest first; destination, when set,
// names the target to list (for a deleted cluster's backups).
func (c *Client) Backups(ctx context.Context, ns, name, destination string) ([]spec.Backup, error) {
	var out spec.BackupList
	if err := c.do(ctx, http.MethodGet, clusterPath(ns, name)+"/backups", destinationQuery(destination), nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Backup returns one backup of a cluster.
func (c *Client) Backup(ctx context.Context, ns, name, id, destination string) (*spec.Backup, error) {
	var out spec.Backup
	if err := c.do(ctx, http.MethodGet, backupPath(ns, name, id), destinationQuery(destination), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteBackup deletes a backup from its target.
func (c *Client) DeleteBackup(ctx context.Context, ns, name, id, destination string) (*spec.Backup, error) {
	var out spec.Backup
	if err := c.do(ctx, http.MethodDelete, backupPath(ns, name, id), destinationQuery(destination), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func backupPath(ns, name, id string) string {
	return clusterPath(ns, name) + "/backups/" + url.PathEscape(id)
}

func destinationQuery(destination string) url.Values {
	if destination == "" {
		return nil
	}
	return url.Values{"destination": {destination}}
}
