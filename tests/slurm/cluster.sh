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
# pid files, munge, the common slurm.conf lines, fake GPUs, waiting for idle nodes
source "$(dirname "${BASH_SOURCE[0]}")/../../tools/lib/slurm-daemons.sh"

write_conf() {
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
  local gpus
  gpus=$(sl_fake_gpus "$DIR" "$NGPU")
  {
    echo "# Written by tests/slurm/cluster.sh for the ompml slurm tests; private to $DIR."
    echo "ClusterName=ompmltest"
    echo "SlurmctldHost=localhost"
    echo "SlurmctldPort=$PORT"
    echo "SlurmdPort=$((PORT + 1))"
    sl_conf_common "$DIR"
    cat <<EOF
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmdSpoolDir=$DIR/spool
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localhost CPUs=$CPUS RealMemory=1000 Gres=gpu:$NGPU State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=localhost Default=NO MaxTime=INFINITE State=UP
EOF
  } >"$CONF"
  echo "NodeName=localhost Name=gpu File=$gpus" >"$DIR/etc/gres.conf"
}

cmd_start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (SlurmUser=root, slurmd)"
  sl_need_programs /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch
  local p
  for p in munged slurmctld slurmd; do
    if sl_pid_alive "$DIR/run/$p.pid"; then
      die "$p already running (pid $(<"$DIR/run/$p.pid")) in $DIR; run '$0 stop' first"
    fi
  done
  # a fresh state dir each start: no jobs or node state left over from an earlier run
  rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/dev"
  write_conf
  sl_start_munge "$DIR"
  # SLURM_CONF also tells the daemons where gres.conf is (beside slurm.conf)
  export SLURM_CONF=$CONF
  /usr/sbin/slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
  /usr/sbin/slurmd -f "$CONF" -N localhost || die "slurmd failed; see $DIR/log/slurmd.log"

  if ! sl_wait_idle 30 localhost; then
    say "node did not become idle within 30 s; logs:"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    cmd_stop
    exit 1
  fi
  say "up: SLURM_CONF=$CONF ($CPUS CPUs, gpu:$NGPU, partitions gpu,cpu)"
}

cmd_stop() {
  # slurmd first (it kills running job steps), then the controller, then munge
  sl_stop_pidfile slurmd "$DIR/run/slurmd.pid"
  sl_stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
  sl_stop_pidfile munged "$DIR/run/munged.pid"
  say "stopped ($DIR)"
}

cmd_status() {
  local p rc=0
  for p in munged slurmctld slurmd; do
    if sl_pid_alive "$DIR/run/$p.pid"; then
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
