#!/usr/bin/env bash
# Installs what Mysos' tests and demo need on a Debian machine, and nothing
# that is already there: Debian packages (MariaDB's server and backup tool
# for the executor, etcd for the external-etcd tests, diff for mysosctl
# diff, curl for the demo, Java and Maven for the HDFS mini cluster), the
# Go modules (the tools module's included) and Hadoop's jars.
# Safe to run again. Debian's packages do not start a MariaDB service here
# (policy-rc.d), and Mysos never uses one: executors start their own mysqld.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package providing it
declare -A packages=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [diff]=diffutils
  [curl]=curl
  [mariadb-install-db]=mariadb-server
  [mariabackup]=mariadb-backup
  [javac]=openjdk-17-jdk-headless
  [mvn]=maven
  [prometheus]=prometheus   # the metrics e2e runs its own on loopback
  [chromium]=chromium       # the status page test drives it headless
)

missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
    command -v sudo >/dev/null || { echo "install-deps: run as root: apt-get install -y ${missing[*]}" >&2; exit 1; }
  else
    sudo=
  fi
  # Package lists may be stale or absent on a fresh machine.
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

go mod download
# The Hadoop mini cluster the backup tests run on (hack/hdfs.sh): its jars
# from Maven Central, and its few lines of Java compiled.
hack/hdfs.sh deps
# mesos-go's example programs, which the end-to-end tests run against the dev cluster.
(cd tools/mesos-examples && go mod download)
