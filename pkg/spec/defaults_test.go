package spec

import (
	"reflect"
	"testing"
)

func TestSetDefaultsFillsUnsetFields(t *testing.T) {
	c := &MySQLCluster{
		Metadata: ObjectMeta{Name: "a"},
		Spec: ClusterSpec{
			Users:  []User{{Name: "app", Databases: []string{"shop"}}, {Name: "r", Privileges: []string{"select", " create   view "}}},
			Backup: &BackupSpec{},
		},
	}
	SetDefaults(c)
	checks := []struct {
		name      string
		got, want any
	}{
		{"namespace", c.Metadata.Namespace, DefaultNamespace},
		{"replicas", *c.Spec.Replicas, int32(3)},
		{"flavor", c.Spec.Flavor, "mariadb"},
		{"version", c.Spec.Version, "10.11"},
		{"cpus", c.Spec.Resources.CPUs, Quantity("1")},
		{"mem", c.Spec.Resources.Memory, Quantity("512Mi")},
		{"disk", c.Spec.Resources.Disk, Quantity("2Gi")},
		{"user host", c.Spec.Users[0].Host, "%"},
		{"user privileges", c.Spec.Users[0].Privileges, []string{"ALL"}},
		{"privileges normalised", c.Spec.Users[1].Privileges, []string{"SELECT", "CREATE VIEW"}},
		{"spreadKey", c.Spec.Placement.SpreadKey, "hostname"},
		{"maxPerDomain", *c.Spec.Placement.MaxPerDomain, int32(1)},
		{"role", c.Spec.Placement.Role, "mysos"},
		{"backup retention.keep", *c.Spec.Backup.Retention.Keep, int32(7)},
		{"apiVersion untouched", c.APIVersion, ""},
		{"restore untouched", c.Spec.Restore, (*RestoreSpec)(nil)},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v; want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestSetDefaultsVersionFollowsFlavor(t *testing.T) {
	tests := []struct{ flavor, want string }{
		{"", DefaultMariaDBVersion},
		{"mariadb", "10.11"},
		{"mysql", "8.0"},
		{"postgres", ""}, // left for Validate to report
	}
	for _, tt := range tests {
		c := &MySQLCluster{Spec: ClusterSpec{Flavor: tt.flavor}}
		SetDefaults(c)
		if c.Spec.Version != tt.want {
			t.Errorf("flavor %q: version = %q; want %q", tt.flavor, c.Spec.Version, tt.want)
		}
	}
}

func TestSetDefaultsKeepsGivenValues(t *testing.T) {
	c := validCluster()
	c.Spec.Replicas = ptr(int32(0)) // invalid, but the user's: Validate reports it
	c.Spec.Resources.CPUs = "0"
	c.Spec.Placement.MaxPerDomain = ptr(int32(0))
	want := deepCopy(t, c)
	SetDefaults(c)
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("SetDefaults changed given values:\n got %+v\nwant %+v", c, want)
	}
}

func TestSetDefaultsIdempotent(t *testing.T) {
	for _, c := range []*MySQLCluster{{}, validCluster(), {Spec: ClusterSpec{Users: []User{{}}, Backup: &BackupSpec{}}}} {
		SetDefaults(c)
		once := deepCopy(t, c)
		SetDefaults(c)
		if !reflect.DeepEqual(c, once) {
			t.Fatalf("SetDefaults is not idempotent:\n once %+v\ntwice %+v", once, c)
		}
	}
	SetDefaults(nil) // must not panic
}
