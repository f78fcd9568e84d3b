package spec

import (
	"fmt"
	"math/big"
	"strings"
)

// Kind of the quota API.
const ResourceQuotaKind = "ResourceQuota"

// ResourceQuota caps what the clusters of one namespace may ask for in
// total, checked when a cluster is created or grows. Only an admin of every
// namespace sets it, so a team cannot raise its own.
type ResourceQuota struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// Hard are the limits; a field left out is not limited.
	Hard QuotaAmounts `json:"hard"`
	// Used is what the namespace's clusters ask for now (in answers only).
	Used *QuotaAmounts `json:"used,omitempty"`
}

// QuotaAmounts are amounts of the resources a quota counts: MySQL
// instances (spec.replicas) and spec.resources times replicas.
type QuotaAmounts struct {
	Instances *int64   `json:"instances,omitempty"`
	CPUs      Quantity `json:"cpus,omitempty"`
	Memory    Quantity `json:"mem,omitempty"`
	Disk      Quantity `json:"disk,omitempty"`
}

// ValidateResourceQuota checks the limits.
func ValidateResourceQuota(q *ResourceQuota) ErrorList {
	var errs ErrorList
	if q.Hard.Instances != nil && *q.Hard.Instances < 0 {
		errs = append(errs, invalidErr("hard.instances", *q.Hard.Instances, "must be 0 or more"))
	}
	for _, f := range []struct {
		path string
		q    Quantity
	}{{"hard.cpus", q.Hard.CPUs}, {"hard.mem", q.Hard.Memory}, {"hard.disk", q.Hard.Disk}} {
		if f.q.IsZero() {
			continue
		}
		if _, err := f.q.Parse(); err != nil {
			errs = append(errs, invalidErr(f.path, f.q, err.Error()))
		}
	}
	if q.Used != nil {
		errs = append(errs, forbiddenErr("used", nil, "is computed by the server: leave it out"))
	}
	return errs
}

// Usage is what quotas count, exactly.
type Usage struct {
	Instances       int64
	CPUs, Mem, Disk *big.Rat
}

// NewUsage is zero usage.
func NewUsage() Usage {
	return Usage{CPUs: new(big.Rat), Mem: new(big.Rat), Disk: new(big.Rat)}
}

// UsageOf is what a defaulted, valid cluster asks for; a deleting cluster
// still counts until it is gone.
func UsageOf(c *MySQLCluster) Usage {
	u := NewUsage()
	n := int64(DefaultReplicas)
	if c.Spec.Replicas != nil {
		n = int64(*c.Spec.Replicas)
	}
	u.Instances = n
	times := func(q Quantity) *big.Rat {
		v, err := q.Parse()
		if err != nil || q.IsZero() {
			return new(big.Rat)
		}
		return v.Mul(v, new(big.Rat).SetInt64(n))
	}
	u.CPUs, u.Mem, u.Disk = times(c.Spec.Resources.CPUs), times(c.Spec.Resources.Memory), times(c.Spec.Resources.Disk)
	return u
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{Instances: u.Instances + v.Instances, CPUs: new(big.Rat).Add(u.CPUs, v.CPUs),
		Mem: new(big.Rat).Add(u.Mem, v.Mem), Disk: new(big.Rat).Add(u.Disk, v.Disk)}
}

// Grows reports whether u asks for more of anything than from does.
func (u Usage) Grows(from Usage) bool {
	return u.Instances > from.Instances || u.CPUs.Cmp(from.CPUs) > 0 || u.Mem.Cmp(from.Mem) > 0 || u.Disk.Cmp(from.Disk) > 0
}

// Amounts renders usage the way quotas are written.
func (u Usage) Amounts() QuotaAmounts {
	n := u.Instances
	return QuotaAmounts{Instances: &n, CPUs: cpusQuantity(u.CPUs), Memory: bytesQuantity(u.Mem), Disk: bytesQuantity(u.Disk)}
}

func cpusQuantity(v *big.Rat) Quantity {
	return Quantity(strings.TrimRight(strings.TrimRight(v.FloatString(3), "0"), "."))
}

func bytesQuantity(v *big.Rat) Quantity {
	b := ceilRat(v)
	for _, unit := range []struct {
		suffix string
		shift  uint
	}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		div := new(big.Int).Lsh(big.NewInt(1), unit.shift)
		if q, r := new(big.Int).QuoRem(b, div, new(big.Int)); r.Sign() == 0 && q.Sign() > 0 {
			return Quantity(q.String() + unit.suffix)
		}
	}
	return Quantity(b.String())
}

// Exceeded lists, for each limit that after is over and that grew from
// before, what is asked, used and allowed; empty when the quota admits it.
func (q *ResourceQuota) Exceeded(before, after Usage) []string {
	var over []string
	if q.Hard.Instances != nil && after.Instances > *q.Hard.Instances && after.Instances > before.Instances {
		over = append(over, fmt.Sprintf("instances: %d would be in use, the limit is %d", after.Instances, *q.Hard.Instances))
	}
	check := func(name string, limit Quantity, b, a *big.Rat, show func(*big.Rat) string) {
		if limit.IsZero() {
			return
		}
		hard, err := limit.Parse()
		if err != nil || a.Cmp(hard) <= 0 || a.Cmp(b) <= 0 {
			return
		}
		over = append(over, fmt.Sprintf("%s: %s would be in use, the limit is %s", name, show(a), limit))
	}
	cpus := func(v *big.Rat) string { return string(cpusQuantity(v)) }
	mem := func(v *big.Rat) string { return string(bytesQuantity(v)) }
	check("cpus", q.Hard.CPUs, before.CPUs, after.CPUs, cpus)
	check("mem", q.Hard.Memory, before.Mem, after.Mem, mem)
	check("disk", q.Hard.Disk, before.Disk, after.Disk, mem)
	return over
}
