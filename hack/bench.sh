#!/usr/bin/env bash
# make bench: every benchmark docs/benchmarks.md reports, on this machine.
# The raw output (go test's benchmark format, with the machine and date as
# file configuration) goes to docs/benchmarks-raw.txt, and hack/benchreport
# regenerates the tables of docs/benchmarks.md from it. About 10 minutes on
# 2 vCPUs; the e2e benchmarks need what `make test` needs (hack/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-buildvcs=false

raw=docs/benchmarks-raw.txt
hdr=$(mktemp)
tmp=$(mktemp)
log=$(mktemp /tmp/mysos-bench-XXXXXX.log) # everything go test printed, kept
start=$(date +%s)
failed=()
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc)"
	echo "mem: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "go: $(go version | awk '{print $3}')"
} >"$hdr"

# bench builds one package's test binary and runs it in the package's
# directory, as go test would, but with the binary's stderr (the components'
# logs) kept apart from its stdout: go test merges the two, and a log line
# could split a result line. A failure is reported and the run goes on, so
# one broken benchmark does not cost the figures of the others.
bin=$(mktemp -d)
trap 'rm -rf "$hdr" "$tmp" "$bin"' EXIT
bench() {
	local pkg=$1
	shift
	echo "+ $pkg: $*" | tee -a "$log" >&2
	local test="$bin/$(basename "$pkg").test"
	if ! go test -c -o "$test" "$pkg" 2>>"$log" ||
		! (cd "$pkg" && "$test" -test.run '^$' "$@") 2>>"$log" | tee -a "$log" |
		grep -E '^(Benchmark|PASS|FAIL|---|pkg:|goos:|goarch:|cpu:)' | tee -a "$tmp" >&2; then
		failed+=("$pkg $*")
	fi
}

# Hot paths: micro-benchmarks of the code every event, pass or request runs.
for pkg in ./pkg/offers ./pkg/mysql ./pkg/spec ./pkg/store ./pkg/placement; do
	bench "$pkg" -test.bench . -test.benchmem -test.count 5
done
# The dev cluster alone: one task's life, and 10,000 tasks on 100 agents.
bench ./pkg/devcluster -test.bench BenchmarkLaunchAckKill -test.benchtime 20x -test.count 3
bench ./pkg/devcluster -test.bench BenchmarkScale100Agents10000Tasks -test.benchtime 1x -test.timeout 20m
# The control plane: 100 agents, 100, 300 and 1,000 clusters of 3.
bench ./e2e -test.bench BenchmarkControlPlane -test.benchtime 1x -test.timeout 30m
# Real MariaDB: apply -> Ready, failover, switchover, backup and restore.
bench ./e2e -test.bench BenchmarkApplyToReady -test.benchtime 5x -test.timeout 30m
bench ./e2e -test.bench 'BenchmarkFailover|BenchmarkSwitchoverWritePause' -test.benchtime 10x -test.timeout 30m
bench ./e2e -test.bench BenchmarkBackupRestore -test.benchtime 3x -test.timeout 30m
# mysos-router against a direct connection (real MariaDB on loopback).
bench ./pkg/router -test.bench BenchmarkRouterLatency -test.benchtime 3x
bench ./pkg/router -test.bench BenchmarkRouterThroughput -test.count 3

elapsed=$(($(date +%s) - start))
printf 'elapsed: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60)) >>"$hdr"
cat "$hdr" "$tmp" >"$raw"
go run ./hack/benchreport -doc docs/benchmarks.md "$raw"
echo "wrote $raw and the tables of docs/benchmarks.md ($((elapsed / 60)) min); full log: $log" >&2
if ((${#failed[@]})); then
	printf 'FAILED: go test %s\n' "${failed[@]}" >&2
	exit 1
fi
