// Package executor is the Mysos custom executor: the process a Mesos agent
// starts for one MySQL instance, which runs that instance's task and reports
// its state to the agent over the v1 executor HTTP API.
//
// One executor runs one task. The executor subscribes to its agent, starts
// the task's Workload on LAUNCH (TASK_STARTING, then TASK_RUNNING once
// Workload.Start returns, or TASK_FAILED with its error), reports the
// workload's own end (TASK_FINISHED, or TASK_FAILED with the error), stops
// it on KILL within the kill policy's grace period (default 3s) and on
// SHUTDOWN (TASK_KILLED), and exits once every task it was given has ended
// and the agent acknowledged the terminal update (exit 0), after SHUTDOWN
// (exit 0), or when it lost its agent for good (non-zero). Whatever the
// reason, no workload outlives the executor.
//
// Status updates are reliable the Mesos way: each carries a fresh 16-byte
// uuid and stays pending until the agent acknowledges it; pending updates
// and the tasks without any acknowledged update travel in every SUBSCRIBE
// call, so a re-subscription hands them to the agent again. If the
// framework checkpoints (MESOS_CHECKPOINT=1), losing the agent leaves the
// workloads running while the executor re-subscribes with a backoff capped
// by MESOS_SUBSCRIPTION_BACKOFF_MAX, for at most MESOS_RECOVERY_TIMEOUT;
// without checkpointing the executor stops its workloads and exits.
//
// # Choosing the workload
//
// A task names its workload kind in its data, a JSON object whose
// "workload" member is the kind (e.g. {"workload":"hold"}); the object's
// other members belong to the workload. Only a task without data may name
// the kind in the label mysos.io/workload instead. A task naming no kind, or
// a kind the executor does not know, fails with a message listing the known
// kinds.
//
// The built-in kind "hold" (see NewHold) runs until stopped; it exists for
// tests and end-to-end checks of the scheduler. "mysql" (NewMySQL) runs one
// mysqld, whose new data directory may be seeded from a donor or restored
// from a backup (and brought to a point in time from the binlog archive);
// "backup" (NewBackup) takes one full backup of a member into a backup
// target and finishes; "binlog-archiver" (NewArchiver) streams a member's
// binary log into the target's binlog archive until it is killed.
package executor
