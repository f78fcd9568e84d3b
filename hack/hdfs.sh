#!/usr/bin/env bash
# A real HDFS for the tests: Hadoop's MiniDFSCluster (one NameNode, one
# DataNode, everything on 127.0.0.1) from Maven Central's
# org.apache.hadoop:hadoop-client-minicluster, run by a few lines of Java.
#
#   hack/hdfs.sh deps               fetch the jars and compile (idempotent)
#   hack/hdfs.sh start DIR [PORT]   start in DIR, wait until ready, print host:port
#   hack/hdfs.sh stop DIR           stop the one started in DIR
#
# The jars and classes are cached in $MYSOS_HDFS_CACHE (~/.cache/mysos-hdfs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MYSOS_HDFS_CACHE:-$HOME/.cache/mysos-hdfs}

deps() {
  command -v java >/dev/null || { echo "hdfs: java not found (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "hdfs: mvn not found (apt-get install -y maven)" >&2; exit 1; }
  mkdir -p "$cache"
  # Re-fetch when the pom changes; compile when the source changes.
  if ! cmp -s "$here/hdfs/pom.xml" "$cache/pom.xml" || [[ ! -d $cache/lib ]]; then
    rm -rf "$cache/lib"
    mvn -q -B -Dstyle.color=never -f "$here/hdfs/pom.xml" dependency:copy-dependencies -DoutputDirectory="$cache/lib" >&2
    cp "$here/hdfs/pom.xml" "$cache/pom.xml"
    rm -rf "$cache/classes"
  fi
  if ! cmp -s "$here/hdfs/MiniHDFS.java" "$cache/MiniHDFS.java" || [[ ! -f $cache/classes/MiniHDFS.class ]]; then
    javac -cp "$cache/lib/*" -d "$cache/classes" "$here/hdfs/MiniHDFS.java"
    cp "$here/hdfs/MiniHDFS.java" "$cache/MiniHDFS.java"
  fi
}

start() {
  local dir=$1 port=${2:-0}
  deps
  mkdir -p "$dir"
  rm -f "$dir/ready"
  java -cp "$cache/classes:$cache/lib/*" MiniHDFS "$dir/data" "$port" "$dir/ready" >"$dir/hdfs.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1200); do
    if [[ -f $dir/ready ]]; then cat "$dir/ready"; return 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "hdfs: exited early; its log:" >&2; tail -50 "$dir/hdfs.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "hdfs: not ready within 120 s; its log:" >&2
  tail -50 "$dir/hdfs.log" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir=$1 pid
  [[ -f $dir/pid ]] || return 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid" "$dir/ready"
}

case ${1:-} in
  deps) deps ;;
  start) start "${2:?usage: hdfs.sh start DIR [PORT]}" "${3:-0}" ;;
  stop) stop "${2:?usage: hdfs.sh stop DIR}" ;;
  *) echo "usage: hack/hdfs.sh deps | start DIR [PORT] | stop DIR" >&2; exit 2 ;;
esac
