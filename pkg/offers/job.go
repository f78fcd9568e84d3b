package offers

import (
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Job is a short task that owns nothing on its agent: a backup. It runs on
// unreserved resources of the offer's role, with no volume and no port, and
// its resources return to the pool when it ends.
type Job struct {
	Role                         string
	CPUs, MemMiB                 float64
	ExecutorCPUs, ExecutorMemMiB float64
	FrameworkID, AgentID         string
	TaskID, TaskName             string
	Command                      mesos.CommandInfo
	Data                         []byte
	Labels                       map[string]string
}

// Operations launch the job: a single LAUNCH.
func (j Job) Operations() []mesos.Offer_Operation {
	ti := mesos.TaskInfo{
		Name:      j.TaskName,
		TaskID:    mesos.TaskID{Value: j.TaskID},
		AgentID:   mesos.AgentID{Value: j.AgentID},
		Resources: []mesos.Resource{j.allocated(scalar("cpus", j.CPUs)), j.allocated(scalar("mem", j.MemMiB))},
		Executor: executorInfo(j.TaskID, j.FrameworkID, j.TaskName, j.Command,
			j.allocated(scalar("cpus", j.ExecutorCPUs)), j.allocated(scalar("mem", j.ExecutorMemMiB))),
		Data: j.Data,
	}
	if len(j.Labels) > 0 {
		ti.Labels = labels(j.Labels)
	}
	return []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH,
		Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{ti}}}}
}

func (j Job) allocated(r mesos.Resource) mesos.Resource {
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(j.Role)}
	return r
}

// executorInfo is Mysos' executor for one task: its id is the task id (one
// executor per task).
func executorInfo(taskID, frameworkID, taskName string, command mesos.CommandInfo, resources ...mesos.Resource) *mesos.ExecutorInfo {
	return &mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: taskID},
		FrameworkID: &mesos.FrameworkID{Value: frameworkID},
		Name:        proto.String("mysos-executor " + taskName),
		Command:     proto.Clone(&command).(*mesos.CommandInfo),
		Resources:   resources,
	}
}
