#!/usr/bin/env bash
# The demo: starts a Mysos scheduler on the embedded etcd (state in .demo/),
# applies examples/quickstart.yaml and shows what Mysos stored. The scheduler
# keeps running so you can go on with mysosctl; `make demo-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
PORT=${MYSOS_DEMO_PORT:-55001}
export MYSOS_CONFIG=$DEMO_DIR/scheduler/mysosctl.yaml
ctl=bin/mysosctl

stop() {
  if [[ -f $DEMO_DIR/scheduler.pid ]]; then
    pid=$(cat "$DEMO_DIR/scheduler.pid")
    if kill "$pid" 2>/dev/null; then
      # Wait for a clean shutdown so etcd's data dir is released.
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "demo: scheduler (pid $pid) stopped"
    fi
    rm -f "$DEMO_DIR/scheduler.pid"
  fi
}

if [[ ${1:-} == stop ]]; then stop; exit 0; fi
stop
mkdir -p "$DEMO_DIR"

echo "demo: starting mysos-scheduler (embedded etcd, API on 127.0.0.1:$PORT, log in $DEMO_DIR/scheduler.log)"
nohup bin/mysos-scheduler --data-dir "$DEMO_DIR/scheduler" --listen "127.0.0.1:$PORT" \
  >"$DEMO_DIR/scheduler.log" 2>&1 &
echo $! >"$DEMO_DIR/scheduler.pid"

for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$DEMO_DIR/scheduler.pid")" 2>/dev/null || { cat "$DEMO_DIR/scheduler.log"; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz?verbose"

run() { echo; echo "\$ mysosctl $*"; $ctl "$@"; }
run apply -f examples/quickstart.yaml
run apply -f examples/quickstart.yaml
run wait clusters/quickstart --for=condition=Accepted --timeout=30s
run get clusters -o wide
run describe clusters quickstart

cat <<MSG

The scheduler keeps running. Try:
  export MYSOS_CONFIG=$MYSOS_CONFIG
  $ctl get clusters quickstart -o yaml
  $ctl diff -f examples/quickstart.yaml
Stop it with: make demo-stop

Until the Mesos framework lands, clusters stay Pending: Ready=False says no
Mesos master is connected.
MSG
