//go:build tools

// Package tools pins mesos-go's example programs, which the end-to-end tests
// run against the dev cluster as third-party clients. They live in a module
// of their own because example-scheduler needs Prometheus versions from 2019
// that Mysos itself must not inherit.
package tools

import (
	_ "github.com/mesos/mesos-go/api/v1/cmd/example-executor"
	_ "github.com/mesos/mesos-go/api/v1/cmd/example-scheduler"
	_ "github.com/mesos/mesos-go/api/v1/cmd/msh"
)
