package taskspec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := Data{Workload: WorkloadMySQL, MySQL: &MySQL{Flavor: "mariadb", ServerID: 2, Admin: "mysos_admin",
		Users: []User{{Name: "mysos_admin", Host: "%", Password: "pw", Privileges: []string{"ALL PRIVILEGES"}, On: "*.*"}}}}
	raw, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(raw)
	if err != nil || d.MySQL.AdminUser().Password != "pw" || d.MySQL.ServerID != 2 {
		t.Fatalf("round trip: %+v, %v", d, err)
	}
	for data, want := range map[string]string{
		`not json`:             "not a JSON object",
		`{}`:                   "names no workload",
		`{"workload":"mysql"}`: `lacks "mysql"`,
		`{"workload":"mysql","mysql":{"serverID":0}}`:                                                                "serverID must not be 0",
		`{"workload":"mysql","mysql":{"serverID":1,"admin":"root","users":[]}}`:                                      `mysql.admin "root" is not among mysql.users`,
		`{"workload":"mysql","mysql":{"serverID":1,"admin":"a","users":[{"name":"a"}],"tls":{"ca":"C","cert":"X"}}}`: "mysql.tls needs ca, cert and key",
	} {
		if _, err := Parse([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error saying %q", data, err, want)
		}
	}
	if d, err := Parse([]byte(`{"workload":"hold"}`)); err != nil || d.Workload != WorkloadHold {
		t.Fatalf("hold: %+v, %v", d, err)
	}
}
