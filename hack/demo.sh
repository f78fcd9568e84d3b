#!/usr/bin/env bash
# The demo: a Mesos-compatible dev cluster (3 agents), a Mysos scheduler on
# the embedded etcd, and examples/quickstart.yaml: a real 3-instance MariaDB
# cluster with GTID replication. It writes a row through the primary, reads
# it back from a replica, prints how to connect, and stays in the
# foreground, like `docker compose up`, until Ctrl-C or SIGTERM; then it
# stops everything it started (scheduler, dev cluster, executors, mysqld).
# State lives in .demo/ (DEMO_DIR) and is kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
PORT=${MYSOS_DEMO_PORT:-55001}
MESOS_PORT=${MYSOS_DEMO_MESOS_PORT:-5050}
ROUTER_PORT=${MYSOS_DEMO_ROUTER_PORT:-6446} # read-write; read-only is +1, metrics +2
export MYSOS_CONFIG=$DEMO_DIR/scheduler/mysosctl.yaml
ctl=bin/mysosctl
pids=()

say() { printf '\ndemo: %s\n' "$*"; }

# stop_all stops what this run started, newest first, each given time for a
# clean shutdown (the dev cluster stops its executors, which stop mysqld).
stop_all() {
  trap - EXIT INT TERM
  say "stopping"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$DEMO_DIR"/*.pid
  leftover=$(pgrep -f "mysos-executor|mariadbd --defaults-file=/tmp/mysos-" || true)
  if [[ -n $leftover ]]; then
    echo "demo: processes left behind (a bug): $leftover"; exit 1
  fi
  echo "demo: everything stopped"
}

# stop_previous stops a demo left running by an older version of this
# script (which ran in the background with pid files).
stop_previous() {
  for name in scheduler devcluster; do
    if [[ -f $DEMO_DIR/$name.pid ]]; then
      kill "$(cat "$DEMO_DIR/$name.pid")" 2>/dev/null || true
      rm -f "$DEMO_DIR/$name.pid"
    fi
  done
}

# wait_http URL PID LOG: poll until URL answers 200, failing if the process dies.
wait_http() {
  for _ in $(seq 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; exit 1; }
    sleep 0.1
  done
  echo "demo: $1 did not answer in 30 s"; cat "$3"; exit 1
}

# sql HOSTPORT USER PASSWORD SQL...: runs SQL with the password in a
# private defaults file, never on a command line.
sql() {
  local host=${1%:*} port=${1##*:} user=$2 pw=$3
  shift 3
  local cnf
  cnf=$(mktemp)
  chmod 600 "$cnf"
  printf '[client]\npassword=%s\n' "$pw" >"$cnf"
  mariadb --defaults-extra-file="$cnf" -h "$host" -P "$port" -u "$user" --batch --skip-column-names "$@"
  local rc=$?
  rm -f "$cnf"
  return $rc
}

if [[ ${1:-} == stop ]]; then stop_previous; exit 0; fi
stop_previous
mkdir -p "$DEMO_DIR"
trap stop_all EXIT INT TERM

say "starting mysos-devcluster: a Mesos-compatible master on 127.0.0.1:$MESOS_PORT, 3 agents (log: $DEMO_DIR/devcluster.log)"
netns=()
# MYSOS_DEMO_NETNS=1 (as root): agents in network namespaces of their own.
[[ ${MYSOS_DEMO_NETNS:-} == 1 ]] && netns=(--netns)
bin/mysos-devcluster --listen "127.0.0.1:$MESOS_PORT" --agents 3 --work-dir "$DEMO_DIR/devcluster" "${netns[@]}" \
  >"$DEMO_DIR/devcluster.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$MESOS_PORT/health" "${pids[-1]}" "$DEMO_DIR/devcluster.log"

say "starting mysos-scheduler: embedded etcd, API on 127.0.0.1:$PORT (log: $DEMO_DIR/scheduler.log)"
bin/mysos-scheduler --data-dir "$DEMO_DIR/scheduler" --listen "127.0.0.1:$PORT" \
  --master "http://127.0.0.1:$MESOS_PORT" --executor-workload mysql >"$DEMO_DIR/scheduler.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$PORT/readyz" "${pids[-1]}" "$DEMO_DIR/scheduler.log"

say "\$ mysosctl apply -f examples/quickstart.yaml"
$ctl apply -f examples/quickstart.yaml

say "waiting for the cluster to be Ready (three mysqld, one primary, two replicas)"
for i in $(seq 180); do
  if $ctl wait clusters/quickstart --for=condition=Ready --timeout=1s >/dev/null 2>&1; then break; fi
  ((i % 5 == 1)) && $ctl get clusters quickstart
  sleep 1
  ((i == 180)) && { echo "demo: not Ready after 3 minutes"; $ctl describe clusters quickstart; exit 1; }
done
$ctl get clusters -o wide
$ctl describe clusters quickstart

say "starting mysos-router: read-write 127.0.0.1:$ROUTER_PORT (the primary), read-only 127.0.0.1:$((ROUTER_PORT + 1)) (log: $DEMO_DIR/router.log)"
bin/mysos-router --cluster quickstart --etcd-endpoints http://127.0.0.1:2479 \
  --rw-listen "127.0.0.1:$ROUTER_PORT" --ro-listen "127.0.0.1:$((ROUTER_PORT + 1))" \
  --http-listen "127.0.0.1:$((ROUTER_PORT + 2))" >"$DEMO_DIR/router.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$((ROUTER_PORT + 2))/readyz" "${pids[-1]}" "$DEMO_DIR/router.log"
router="127.0.0.1:$ROUTER_PORT"

admin_pw=$($ctl credentials quickstart mysos_admin --all -o password)
app_pw=$($ctl credentials quickstart app -o password)
primary=$($ctl get clusters quickstart -o 'jsonpath={.status.endpoints.primary}')
replica=$($ctl get clusters quickstart -o 'jsonpath={.status.endpoints.replicas[0]}')

say "writing a row through the primary ($primary) as app"
sql "$primary" mysos_admin "$admin_pw" -e "CREATE TABLE IF NOT EXISTS shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64), at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
sql "$primary" app "$app_pw" -e "INSERT INTO shop.orders (item) VALUES ('hello from make demo')"
say "reading it back from a replica ($replica)"
for _ in $(seq 50); do
  got=$(sql "$replica" app "$app_pw" -e "SELECT item FROM shop.orders ORDER BY id DESC LIMIT 1" 2>/dev/null || true)
  [[ -n $got ]] && break
  sleep 0.1
done
echo "  $got"
if sql "$replica" app "$app_pw" -e "INSERT INTO shop.orders (item) VALUES ('x')" 2>/dev/null; then
  echo "demo: a replica accepted a write"; exit 1
fi
echo "  (and the replica refuses writes: it is read-only)"

say "writing a row through mysos-router ($router), which leads to the primary"
sql "$router" app "$app_pw" -e "INSERT INTO shop.orders (item) VALUES ('written through mysos-router')"

say "switching the primary over to another instance (mysosctl switchover)"
$ctl switchover quickstart
primary=$($ctl get clusters quickstart -o 'jsonpath={.status.endpoints.primary}')
sql "$primary" app "$app_pw" -e "INSERT INTO shop.orders (item) VALUES ('written after the switchover')"
echo "  the new primary $primary has: $(sql "$primary" app "$app_pw" -e "SELECT GROUP_CONCAT(item SEPARATOR ', ') FROM shop.orders")"
for _ in $(seq 50); do
  sql "$router" app "$app_pw" -e "INSERT INTO shop.orders (item) VALUES ('through the router, after the switchover')" 2>/dev/null && break
  sleep 0.1
done
echo "  mysos-router followed it: port $ROUTER_PORT now reaches $(sql "$router" app "$app_pw" -e "SELECT CONCAT(@@bind_address, ':', @@port)") (the new primary is $primary)"
$ctl events quickstart

say "taking a backup of a replica (mysosctl backup create), into $DEMO_DIR/scheduler/backups"
$ctl backup create quickstart
$ctl backup list quickstart
backup_id=$($ctl get clusters quickstart -o 'jsonpath={.status.backup.last.id}')

# The primary's mysqld, for the failover hint below: its my.cnf binds the
# primary's address.
primary_pid=""
for cnf in $(grep -lx "bind_address = ${primary%:*}" "${TMPDIR:-/tmp}"/mysos-*/my.cnf 2>/dev/null || true); do
  pid=$(pgrep -f -- "--defaults-file=$cnf" | head -1 || true)
  if [[ -n $pid ]]; then primary_pid=$pid; fi
done

cat <<MSG

A replicated MariaDB cluster runs on three Mesos agents. Connect to the primary:

  mariadb -h ${primary%:*} -P ${primary##*:} -u app -p shop      # password: $app_pw

or through mysos-router, which follows the primary across failovers and switchovers
(port $((ROUTER_PORT + 1)) reaches a replica):

  mariadb -h 127.0.0.1 -P $ROUTER_PORT -u app -p shop

In another shell:
  export MYSOS_CONFIG=$MYSOS_CONFIG
  $ctl get clusters quickstart -o yaml
  $ctl credentials quickstart
  curl -s http://127.0.0.1:$MESOS_PORT/master/state | head -c 600   # the framework, as Mesos sees it

Restore that backup into a new cluster (its primary from the backup, its replicas seeded
from it):
  sed 's|quickstart/20261126T040703Z|quickstart/$backup_id|' examples/restored.yaml | $ctl apply -f -
  $ctl wait clusters/quickstart-restored --for=condition=Ready --timeout=5m

Try a failover: kill the primary's mysqld and watch a replica take over, losing nothing
(Mysos fails a cluster over once per spec.failover.blockWindow, 5 min, unless the last
failover was acknowledged, as the first command does; otherwise it restarts the primary):
  $ctl failover ack quickstart 2>/dev/null; kill -9 ${primary_pid:-<the pid of the mariadbd bound to ${primary%:*}>}
  sleep 1; $ctl events quickstart; $ctl get clusters -o wide

Press Ctrl-C to stop everything.
MSG
wait "${pids[@]}"
