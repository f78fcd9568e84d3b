// Package devcluster is a Mesos-compatible master and agents in one process,
// for the demo and the end-to-end tests: what kind is to Kubernetes. The
// master speaks the real v1 scheduler HTTP API (POST /api/v1/scheduler) and
// each agent the real v1 executor HTTP API (POST /api/v1/executor), in JSON
// and protobuf with RecordIO streams, with Mesos 1.10 semantics, so that a
// framework that works here works on Mesos. Executors are real local
// processes.
//
// Master and agents exchange the messages of link.go, asynchronously and in
// order, like libprocess messages between real Mesos daemons. A link can be
// cut to simulate a partition.
//
// Nothing in this package knows about MySQL; only tests and
// cmd/mysos-devcluster import it. docs/devcluster.md says what is faithful,
// what is simplified and what is not supported.
package devcluster
