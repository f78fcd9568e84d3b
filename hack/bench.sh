#!/usr/bin/env bash
# make bench: every benchmark docs/benchmarks.md reports, on this machine.
# The raw output (go test's benchmark format, with the machine and date as
# file configuration) goes to docs/benchmarks-raw.txt, and hack/benchreport
# regenerates the tables of docs/benchmarks.md from it. About 15 minutes on
# 2 vCPUs; the e2e benchmarks need what `make test` needs (hack/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-buildvcs=false

raw=docs/benchmarks-raw.txt
hdr=$(mktemp)
tmp=$(mktemp)
log=$(mktemp /tmp/mysos-bench-XXXXXX.log) # everything go test printed, kept
trap 'rm -f "$hdr" "$tmp"' EXIT
start=$(date +%s)
failed=()
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc)"
	echo "mem: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "go: $(go version | awk '{print $3}')"
} >"$hdr"

# bench runs one go test; a failure is reported and the run goes on, so
# one broken benchmark does not cost the figures of the others.
bench() {
	echo "+ go test -run '^\$' $*" | tee -a "$log" >&2
	# stderr (the components' logs) apart, so that it cannot split a result line
	if ! go test -run '^$' "$@" 2>>"$log" | tee -a "$log" | grep -E '^(Benchmark|ok|FAIL|---|pkg:|goos:|goarch:|cpu:)' | tee -a "$tmp" >&2; then
		failed+=("$*")
	fi
}

# Hot paths: micro-benchmarks of the code every event, pass or request runs.
bench -bench . -benchmem -count 5 ./pkg/offers/ ./pkg/mysql/ ./pkg/spec/ ./pkg/store/ ./pkg/placement/
# The dev cluster alone: one task's life, and 10,000 tasks on 100 agents.
bench -bench BenchmarkLaunchAckKill -benchtime 20x -count 3 ./pkg/devcluster/
bench -bench BenchmarkScale100Agents10000Tasks -benchtime 1x -timeout 20m ./pkg/devcluster/
# The control plane: 100 agents, 100, 300 and 1,000 clusters of 3.
bench -bench BenchmarkControlPlane -benchtime 1x -timeout 30m ./e2e/
# Real MariaDB: apply -> Ready, failover, switchover, backup and restore.
bench -bench BenchmarkApplyToReady -benchtime 5x -timeout 30m ./e2e/
bench -bench 'BenchmarkFailover|BenchmarkSwitchoverWritePause' -benchtime 10x -timeout 30m ./e2e/
bench -bench BenchmarkBackupRestore -benchtime 3x -timeout 30m ./e2e/

elapsed=$(($(date +%s) - start))
printf 'elapsed: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60)) >>"$hdr"
cat "$hdr" "$tmp" >"$raw"
go run ./hack/benchreport -doc docs/benchmarks.md "$raw"
echo "wrote $raw and the tables of docs/benchmarks.md ($((elapsed / 60)) min); full log: $log" >&2
if ((${#failed[@]})); then
	printf 'FAILED: go test %s\n' "${failed[@]}" >&2
	exit 1
fi
