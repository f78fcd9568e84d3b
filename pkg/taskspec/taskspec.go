// Package taskspec is the contract between the scheduler and mysos-executor:
// the JSON that a task's data carries. Mesos shows task data in none of its
// state endpoints, which is why credentials travel here and never in labels,
// the environment or a command line.
package taskspec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Workload kinds.
const (
	// WorkloadHold keeps the task's volume and does nothing else; the
	// reconciler's tests run it.
	WorkloadHold = "hold"
	// WorkloadMySQL runs one mysqld.
	WorkloadMySQL = "mysql"
)

// Data is a task's data.
type Data struct {
	Workload string `json:"workload"`
	MySQL    *MySQL `json:"mysql,omitempty"`
}

// MySQL is what the executor needs to run one mysqld.
type MySQL struct {
	Flavor  string `json:"flavor"`
	Version string `json:"version,omitempty"`
	// ServerID is unique within the cluster.
	ServerID uint32 `json:"serverID"`
	// Host is the agent's hostname as Mesos reports it; mysqld binds to it
	// when it is an IP address, to every address otherwise.
	Host      string            `json:"host"`
	MemoryMiB float64           `json:"memoryMiB"`
	SemiSync  bool              `json:"semiSync,omitempty"`
	Config    map[string]string `json:"config,omitempty"`
	// Users are created (or their passwords reset) at every start.
	Users []User `json:"users"`
	// Admin names the user of Users the executor connects as.
	Admin string `json:"admin"`
	// Seed, when set, is the member a new data directory is copied from:
	// the cluster has data. An existing data directory ignores it.
	Seed *Donor `json:"seed,omitempty"`
}

// Donor is a healthy member to copy data from.
type Donor struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// User is one MySQL account and one grant.
type User struct {
	Name            string   `json:"name"`
	Host            string   `json:"host"`
	Password        string   `json:"password"`
	Privileges      []string `json:"privileges"`
	On              string   `json:"on"`
	WithGrantOption bool     `json:"withGrantOption,omitempty"`
}

// Parse decodes task data, checking what the workload needs.
func Parse(b []byte) (Data, error) {
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		return Data{}, fmt.Errorf("task data is not a JSON object: %v", err)
	}
	if d.Workload == "" {
		return Data{}, errors.New(`task data names no workload (want {"workload": KIND, ...})`)
	}
	if d.Workload == WorkloadMySQL {
		if d.MySQL == nil {
			return Data{}, errors.New(`task data for the mysql workload lacks "mysql"`)
		}
		if d.MySQL.ServerID == 0 {
			return Data{}, errors.New("task data: mysql.serverID must not be 0")
		}
		if d.MySQL.AdminUser() == nil {
			return Data{}, fmt.Errorf("task data: mysql.admin %q is not among mysql.users", d.MySQL.Admin)
		}
	}
	return d, nil
}

// AdminUser is the account the executor connects as, nil if missing.
func (m *MySQL) AdminUser() *User {
	for i := range m.Users {
		if m.Users[i].Name == m.Admin {
			return &m.Users[i]
		}
	}
	return nil
}

// Marshal encodes task data.
func (d Data) Marshal() ([]byte, error) { return json.Marshal(d) }
