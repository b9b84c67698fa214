#!/usr/bin/env bash
# A private one-node Slurm cluster for the slurm tests (see /work/shared/reference/local-slurm.md).
#
#   tests/slurm/cluster.sh start    # munged + slurmctld + slurmd, waits for the node to be idle
#   tests/slurm/cluster.sh stop     # stops them by the pids in their pid files
#   tests/slurm/cluster.sh status
#   eval "$(tests/slurm/cluster.sh env)"   # SLURM_CONF for sbatch/squeue/scontrol
#
# Everything lives under $OMPML_SLURM_DIR (default /tmp/ompml-slurm-$UID): its own munge key
# and socket, slurm.conf, state, spool, logs and pid files, and non-default ports, so it does
# not touch /etc/slurm, /etc/munge or a system Slurm. Must run as root (slurmd starts jobs as
# the submitting user; SlurmUser=root). Daemons are only ever stopped by their own pid files.
#
# The node mirrors a small site: partitions "gpu" (default) and "cpu" on the one node, and a
# fake GRES gpu:2 (plain files stand in for the device files) so the GPU scripts'
# --gpus-per-node requests can be scheduled on a machine without GPUs.
set -euo pipefail

DIR=${OMPML_SLURM_DIR:-/tmp/ompml-slurm-$(id -u)}
PORT=${OMPML_SLURM_PORT:-16817}          # slurmctld port; slurmd uses PORT+1
CPUS=${OMPML_SLURM_CPUS:-$(nproc)}
NGPU=${OMPML_SLURM_GPUS:-2}
CONF=$DIR/etc/slurm.conf

say() { echo "cluster.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

pid_alive() {  # pid_alive FILE: the pid in FILE names a running process
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile NAME FILE: TERM, wait up to 10 s, then KILL
  local name=$1 file=$2 pid i
  if ! pid_alive "$file"; then
    rm -f "$file"
    return 0
  fi
  pid=$(<"$file")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    sleep 0.1
  done
  say "$name (pid $pid) ignored TERM, sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

write_conf() {
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
  cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh for the ompml slurm tests; private to $DIR.
ClusterName=ompmltest
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
# cred_expire: how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmUser=root
SlurmdUser=root
MpiDefault=none
JobRequeue=1
# finished jobs stay visible to scontrol for 10 minutes (there is no slurmdbd)
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localhost CPUs=$CPUS RealMemory=1000 Gres=gpu:$NGPU State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=localhost Default=NO MaxTime=INFINITE State=UP
EOF
  # Slurm drops a GPU GRES without File=; plain files stand in for /dev/nvidiaN (no cgroup
  # device constraint here, so nothing is bound; jobs only get CUDA_VISIBLE_DEVICES)
  mkdir -p "$DIR/dev"
  local g
  for ((g = 0; g < NGPU; g++)); do : >"$DIR/dev/gpu$g"; done
  echo "NodeName=localhost Name=gpu File=$DIR/dev/gpu[0-$((NGPU - 1))]" >"$DIR/etc/gres.conf"
}

start_munge() {
  mkdir -p "$DIR/munge"
  chmod 0700 "$DIR/munge"
  if [[ ! -s $DIR/munge/munge.key ]]; then
    (umask 077; head -c 1024 /dev/urandom >"$DIR/munge/munge.key")
  fi
  /usr/sbin/munged --force \
    --socket="$DIR/munge/munge.socket" \
    --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" \
    || die "munged failed to start; see $DIR/log/munged.log"
}

cmd_start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (SlurmUser=root, slurmd)"
  local p
  for p in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
    [[ -x $p ]] || die "$p not found: apt-get install -y slurm-wlm munge"
  done
  for p in munged slurmctld slurmd; do
    if pid_alive "$DIR/run/$p.pid"; then
      die "$p already running (pid $(<"$DIR/run/$p.pid")) in $DIR; run '$0 stop' first"
    fi
  done
  # a fresh state dir each start: no jobs or node state left over from an earlier run
  rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/dev"
  write_conf
  start_munge
  # SLURM_CONF also tells the daemons where gres.conf is (beside slurm.conf)
  export SLURM_CONF=$CONF
  /usr/sbin/slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
  /usr/sbin/slurmd -f "$CONF" -N localhost || die "slurmd failed; see $DIR/log/slurmd.log"

  local deadline=$((SECONDS + 30)) state=""
  while ((SECONDS < deadline)); do
    state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null | head -n1 || true)
    [[ $state == idle ]] && break
    sleep 0.2
  done
  if [[ $state != idle ]]; then
    say "node did not become idle (state '${state:-none}') within 30 s; logs:"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    cmd_stop
    exit 1
  fi
  say "up: SLURM_CONF=$CONF ($CPUS CPUs, gpu:$NGPU, partitions gpu,cpu)"
}

cmd_stop() {
  # slurmd first (it kills running job steps), then the controller, then munge
  stop_pidfile slurmd "$DIR/run/slurmd.pid"
  stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
  stop_pidfile munged "$DIR/run/munged.pid"
  say "stopped ($DIR)"
}

cmd_status() {
  local p rc=0
  for p in munged slurmctld slurmd; do
    if pid_alive "$DIR/run/$p.pid"; then
      echo "$p: running (pid $(<"$DIR/run/$p.pid"))"
    else
      echo "$p: not running"; rc=1
    fi
  done
  return $rc
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
