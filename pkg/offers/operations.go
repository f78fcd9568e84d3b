package offers

import (
	"maps"
	"slices"
	"strconv"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Launch is one task to start for an instance, with everything it needs
// reserved for it: the task's cpus, mem, one port and a persistent volume,
// and the executor's overhead.
type Launch struct {
	Owner     Owner
	Role      string
	Principal string // the framework's; reservations and volumes carry it

	CPUs, MemMiB, DiskMiB        float64
	Port                         uint64
	ExecutorCPUs, ExecutorMemMiB float64

	FrameworkID, AgentID string
	TaskID, TaskName     string
	// Command starts the executor; its id is the task id (one executor per task).
	Command mesos.CommandInfo
	Data    []byte
	Labels  map[string]string
}

// Operations are the operations of one ACCEPT that launch l on an offer in
// which existing is what is already reserved for l.Owner: RESERVE what is
// missing, CREATE the volume unless it exists, LAUNCH.
func (l Launch) Operations(existing mesos.Resources) []mesos.Offer_Operation {
	have := summarize(existing)
	need := l.Missing(existing)
	var reserve mesos.Resources
	if need.CPUs > 0 {
		reserve.Add1(l.reserved(scalar("cpus", need.CPUs)))
	}
	if need.MemMiB > 0 {
		reserve.Add1(l.reserved(scalar("mem", need.MemMiB)))
	}
	if need.Port {
		reserve.Add1(l.reserved(port(l.Port)))
	}
	volume := have.volume
	var ops []mesos.Offer_Operation
	if volume == nil {
		disk := have.plainDisk
		if disk == nil {
			r := l.reserved(scalar("disk", need.DiskMiB))
			reserve.Add1(r)
			disk = &r
		}
		v := l.volumeOf(*disk)
		volume = &v
	}
	if len(reserve) > 0 {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE,
			Reserve: &mesos.Offer_Operation_Reserve{Resources: reserve}})
	}
	if have.volume == nil {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE,
			Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{*volume}}})
	}
	return append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH,
		Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{l.task(*volume)}}})
}

// Need is what a launch still has to reserve from unreserved resources.
type Need struct {
	CPUs, MemMiB, DiskMiB float64
	Port                  bool
}

// Missing is what l lacks beyond existing, its owner's reservations.
func (l Launch) Missing(existing mesos.Resources) Need {
	have := summarize(existing)
	var n Need
	if missing := l.CPUs + l.ExecutorCPUs - have.cpus; missing > 1e-9 {
		n.CPUs = missing
	}
	if missing := l.MemMiB + l.ExecutorMemMiB - have.mem; missing > 1e-9 {
		n.MemMiB = missing
	}
	if have.volume == nil && have.plainDisk == nil {
		n.DiskMiB = l.DiskMiB
	}
	n.Port = !have.hasPort(l.Port)
	return n
}

func (l Launch) task(volume mesos.Resource) mesos.TaskInfo {
	ti := mesos.TaskInfo{
		Name:    l.TaskName,
		TaskID:  mesos.TaskID{Value: l.TaskID},
		AgentID: mesos.AgentID{Value: l.AgentID},
		Resources: []mesos.Resource{
			l.reserved(scalar("cpus", l.CPUs)),
			l.reserved(scalar("mem", l.MemMiB)),
			l.reserved(port(l.Port)),
			volume,
		},
		Executor: executorInfo(l.TaskID, l.FrameworkID, l.TaskName, l.Command,
			l.reserved(scalar("cpus", l.ExecutorCPUs)), l.reserved(scalar("mem", l.ExecutorMemMiB))),
		Data: l.Data,
	}
	if len(l.Labels) > 0 {
		ti.Labels = labels(l.Labels)
	}
	return ti
}

// reserved gives r (unreserved) Mysos' labelled dynamic reservation and the
// offer's allocation.
func (l Launch) reserved(r mesos.Resource) mesos.Resource {
	ri := mesos.Resource_ReservationInfo{
		Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(),
		Role: proto.String(l.Role),
		Labels: labels(map[string]string{
			LabelInstance: l.Owner.Instance, LabelClusterUID: l.Owner.ClusterUID, LabelPersistence: l.Owner.PersistenceID,
		}),
	}
	if l.Principal != "" {
		ri.Principal = proto.String(l.Principal)
	}
	r.Reservations = []mesos.Resource_ReservationInfo{ri}
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(l.Role)}
	return r
}

// volumeOf turns a reserved plain disk into Mysos' persistent volume.
func (l Launch) volumeOf(disk mesos.Resource) mesos.Resource {
	v := *proto.Clone(&disk).(*mesos.Resource)
	persistence := &mesos.Resource_DiskInfo_Persistence{ID: l.Owner.PersistenceID}
	if l.Principal != "" {
		persistence.Principal = proto.String(l.Principal)
	}
	v.Disk = &mesos.Resource_DiskInfo{
		Persistence: persistence,
		Volume:      &mesos.Volume{ContainerPath: VolumePath, Mode: mesos.RW.Enum()},
	}
	return v
}

// Release are the operations that give rs back to the agent's unreserved
// pool: DESTROY every persistent volume, then UNRESERVE everything.
func Release(rs mesos.Resources) []mesos.Offer_Operation {
	var volumes, unreserve mesos.Resources
	for _, r := range rs {
		if r.IsPersistentVolume() {
			volumes = append(volumes, r)
			r = *proto.Clone(&r).(*mesos.Resource)
			r.Disk = nil
		}
		unreserve.Add1(r)
	}
	var ops []mesos.Offer_Operation
	if len(volumes) > 0 {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY,
			Destroy: &mesos.Offer_Operation_Destroy{Volumes: volumes}})
	}
	if len(unreserve) > 0 {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE,
			Unreserve: &mesos.Offer_Operation_Unreserve{Resources: unreserve}})
	}
	return ops
}

// held is what an owner already has reserved in an offer.
type held struct {
	cpus, mem         float64
	ports             []mesos.Value_Range
	volume, plainDisk *mesos.Resource
}

func summarize(rs mesos.Resources) held {
	var h held
	for i := range rs {
		r := rs[i]
		switch r.Name {
		case "cpus":
			h.cpus += r.GetScalar().GetValue()
		case "mem":
			h.mem += r.GetScalar().GetValue()
		case "ports":
			h.ports = append(h.ports, r.GetRanges().GetRange()...)
		case "disk":
			if r.IsPersistentVolume() {
				h.volume = &r
			} else if r.Disk == nil {
				h.plainDisk = &r
			}
		}
	}
	return h
}

func (h held) hasPort(p uint64) bool {
	for _, r := range h.ports {
		if r.Begin <= p && p <= r.End {
			return true
		}
	}
	return false
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func port(p uint64) mesos.Resource {
	return mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
		Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: p, End: p}}}}
}

func labels(m map[string]string) *mesos.Labels {
	ls := &mesos.Labels{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ls.Labels = append(ls.Labels, mesos.Label{Key: k, Value: proto.String(m[k])})
	}
	return ls
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
