#!/usr/bin/env bash
# The demo: starts a Mysos scheduler on the embedded etcd (state in .demo/),
# applies examples/quickstart.yaml and shows what Mysos stored. The scheduler
# keeps running so you can go on with mysosctl; `make demo-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
PORT=${MYSOS_DEMO_PORT:-55001}
MESOS_PORT=${MYSOS_DEMO_MESOS_PORT:-5050}
export MYSOS_CONFIG=$DEMO_DIR/scheduler/mysosctl.yaml
ctl=bin/mysosctl

stop_one() {
  local name=$1
  if [[ -f $DEMO_DIR/$name.pid ]]; then
    pid=$(cat "$DEMO_DIR/$name.pid")
    if kill "$pid" 2>/dev/null; then
      # Wait for a clean shutdown: etcd's data dir and the agents' executors.
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "demo: $name (pid $pid) stopped"
    fi
    rm -f "$DEMO_DIR/$name.pid"
  fi
}
stop() { stop_one scheduler; stop_one devcluster; }

# wait_http URL PIDFILE LOG: poll until URL answers 200, failing if the process dies.
wait_http() {
  for _ in $(seq 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$2")" 2>/dev/null || { cat "$3"; exit 1; }
    sleep 0.1
  done
  echo "demo: $1 did not answer in 30 s"; cat "$3"; exit 1
}

if [[ ${1:-} == stop ]]; then stop; exit 0; fi
stop
mkdir -p "$DEMO_DIR"

echo "demo: starting mysos-devcluster (a Mesos-compatible master on 127.0.0.1:$MESOS_PORT and 3 agents, log in $DEMO_DIR/devcluster.log)"
nohup bin/mysos-devcluster --listen "127.0.0.1:$MESOS_PORT" --agents 3 --work-dir "$DEMO_DIR/devcluster" \
  >"$DEMO_DIR/devcluster.log" 2>&1 &
echo $! >"$DEMO_DIR/devcluster.pid"
wait_http "http://127.0.0.1:$MESOS_PORT/health" "$DEMO_DIR/devcluster.pid" "$DEMO_DIR/devcluster.log"

echo "demo: starting mysos-scheduler (embedded etcd, API on 127.0.0.1:$PORT, log in $DEMO_DIR/scheduler.log)"
nohup bin/mysos-scheduler --data-dir "$DEMO_DIR/scheduler" --listen "127.0.0.1:$PORT" \
  --master "http://127.0.0.1:$MESOS_PORT" >"$DEMO_DIR/scheduler.log" 2>&1 &
echo $! >"$DEMO_DIR/scheduler.pid"
wait_http "http://127.0.0.1:$PORT/readyz" "$DEMO_DIR/scheduler.pid" "$DEMO_DIR/scheduler.log"
# The subscription follows readiness by a moment; wait for it to show.
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" | grep -q '\[+\]mesos ok' && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz?verbose"

run() { echo; echo "\$ mysosctl $*"; $ctl "$@"; }
run apply -f examples/quickstart.yaml
run apply -f examples/quickstart.yaml
run wait clusters/quickstart --for=condition=Ready --timeout=60s
run get clusters -o wide
run describe clusters quickstart

cat <<MSG

The dev cluster and the scheduler keep running. Try:
  export MYSOS_CONFIG=$MYSOS_CONFIG
  $ctl get clusters quickstart -o yaml
  $ctl diff -f examples/quickstart.yaml
  curl -s http://127.0.0.1:$MESOS_PORT/master/state | head -c 600   # the framework, as Mesos sees it
Stop them with: make demo-stop

Mysos is subscribed to the dev cluster as a Mesos framework and runs one task
per instance on three agents, each with a reserved persistent volume. The tasks
run mysos-executor's placeholder workload ("hold"); real mysqld instances come
with the executor issue. Try scaling: edit replicas in examples/quickstart.yaml
and apply it again, or delete the cluster and watch its volumes go.
MSG
