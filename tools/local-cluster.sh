#!/usr/bin/env bash
# A multi-node Slurm cluster on this one machine, for tests and measurements: N compute nodes
# and a head node, each in its own network and UTS namespace (its own hostname and address),
# joined by a bridge in a namespace of their own, so that Slurm and Open MPI meet N separate
# nodes that talk over TCP only. The filesystem is shared, as on a cluster (no mount namespace).
#
#   tools/local-cluster.sh up N            # munged, slurmctld on head, slurmd on node1..nodeN; waits until all idle
#   tools/local-cluster.sh exec CMD...     # CMD on the head node (sbatch, squeue, scontrol, srun ...)
#   tools/local-cluster.sh exec -n node2 CMD...   # CMD on a compute node
#   tools/local-cluster.sh crash NODE      # SIGKILL every process on NODE (slurmd, job steps, ranks): a node dies
#   tools/local-cluster.sh revive NODE     # start NODE's slurmd again: the node comes back
#   tools/local-cluster.sh shape RATE|off  # tc tbf on every node's link (e.g. 1gbit); off removes it
#   tools/local-cluster.sh status | down   # down removes everything up made (also after a failed up)
#   tools/local-cluster.sh leftovers       # fails, listing them, if a namespace, mount or process of the cluster is left
#
# Network: namespaces $P-head, $P-node1..N and $P-switch ($P = OMPML_LC_PREFIX, default
# ompml-lc). Each host has one veth "eth0" with $NET.K/24 (node K; head .254) whose peer sits on
# the bridge br0 in $P-switch; lo is up; IPv6 is off. Nothing is added to this machine's own
# network namespace, and no address outside $NET.0/24 exists in the cluster. A host's UTS
# namespace (hostname head, nodeK) is its daemon's: slurmctld or slurmd starts in a new one, and
# every job step and `exec` on the host joins it. Slurm reaches the
# nodes by NodeAddr (no name resolution needed); munge is one munged on a Unix socket in the
# shared filesystem, which every namespace reaches.
#
# Env: OMPML_LC_DIR (state, logs, conf; default /tmp/ompml-lc-$UID), OMPML_LC_PREFIX,
# OMPML_LC_NET (default 10.24.0), OMPML_LC_CPUS (CPUs per node, default nproc), OMPML_LC_GPUS
# (fake GPUs per node, default 2), OMPML_LC_RATE (tbf rate of every link at up; default none;
# OMPML_LC_BURST its bucket in bytes),
# OMPML_LC_SLURMD_TIMEOUT (s until the controller declares a silent node DOWN, default 20).
# Test hook: OMPML_LC_STOP_AT=STAGE (network|munge|slurmctld|slurmd|wait) makes up kill itself
# with OMPML_LC_STOP_SIGNAL (TERM, INT, ERR: a failing command; HOLD: wait there for a signal
# from outside) once STAGE is done.
# Runs as root. Every exit path of up runs down: a failing command (set -e: the EXIT trap), INT,
# TERM, HUP. Only SIGKILL escapes; then `leftovers` lists what is left, up refuses to start
# over it, and down removes it.
set -euo pipefail
# Before anything else: without a trap, bash sent an INT while it waits for a command lets that
# command "handle" it and goes on (seen: an INT to `up` alone, 0.2 s in, was lost and the
# cluster came up). An exit runs up's EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

DIR=${OMPML_LC_DIR:-/tmp/ompml-lc-$(id -u)}
P=${OMPML_LC_PREFIX:-ompml-lc}
NET=${OMPML_LC_NET:-10.24.0}
CPUS=${OMPML_LC_CPUS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)} # nproc counts OMP_NUM_THREADS as a limit
NGPU=${OMPML_LC_GPUS:-2}
CONF=$DIR/etc/slurm.conf
ME=$(basename "$0")

say() { echo "$ME: $*" >&2; }
die() { say "error: $*"; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/slurm-daemons.sh"

# ---- hosts and namespaces -----------------------------------------------------------------
ns_of() { echo "$P-$1"; }              # network namespace of host NAME (head, nodeK, switch)
# pid_of HOST: its daemon (slurmctld on head, slurmd on a node), which holds the host's UTS
# namespace (its hostname): no bind mount keeps it, so nothing is left to unmount, and a crashed
# node's hostname goes with it (revive makes a new one).
pid_of() {
  local f=$DIR/run/slurmd-$1.pid
  [[ $1 == head ]] && f=$DIR/run/slurmctld.pid
  sl_pid_alive "$f" && cat "$f"
}
addr_of() { [[ $1 == head ]] && echo "$NET.254" || echo "$NET.${1#node}"; }
nodes() { cat "$DIR/etc/nodes" 2>/dev/null || true; }   # node1 .. nodeN of the cluster that is up
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(head|switch|node[0-9]+)$" || true; }

# on [exec] HOST CMD...: CMD in HOST's network and UTS namespaces, with the cluster's
# SLURM_CONF; "exec" replaces this shell by it. The nodes share this machine's cores, so the
# ranks of several nodes may outnumber them: Open MPI's ranks then yield the core while they
# wait (mpi_yield_when_idle, what mpirun sets by itself when it knows it oversubscribes; sbatch
# and srun pass it on to the jobs). Measured with 2 nodes x 2 ranks on 2 cores: 0.33 ms per
# step of a small model with it, 22 ms without.
on() {
  local how=""
  if [[ $1 == exec ]]; then how=exec; shift; fi
  local host=$1
  shift
  local pid
  [[ -e /run/netns/$(ns_of "$host") ]] || die "no host '$host' in the cluster (is it up?)"
  pid=$(pid_of "$host") || die "$host has no running daemon (crashed, or the cluster is not up)"
  SLURM_CONF=$CONF OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1} \
    $how nsenter --net="/run/netns/$(ns_of "$host")" --uts="/proc/$pid/ns/uts" -- "$@"
}

# start_daemon HOST CMD...: CMD (slurmctld or slurmd: it forks into the background) in HOST's
# network namespace and a new UTS namespace whose hostname is HOST; returns once its pid file
# names a running process (10 s at most).
start_daemon() {
  local h=$1 i
  shift
  SLURM_CONF=$CONF in_ns "$(ns_of "$h")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@" || return 1
  for ((i = 0; i < 100; i++)); do
    pid_of "$h" >/dev/null && return 0
    sleep 0.1
  done
  say "$h: no running daemon in its pid file 10 s after the start"
  return 1
}
sl_client() { on head "$@"; }

# in_ns NETNS CMD...: CMD in that network namespace only. Not `ip -n`/`tc -n`: they also make
# "/" a slave mount, which fails where "/" is no mount point (a chroot such as CI's fresh root:
# "mount --make-rslave / failed: Invalid argument").
in_ns() {
  local ns=$1
  shift
  nsenter --net="/run/netns/$ns" -- "$@"
}

# add_host NAME: its network namespace, veth on the bridge and address.
add_host() {
  local h=$1 ns
  ns=$(ns_of "$h")
  ip netns add "$ns"
  echo "$ns" >>"$DIR/run/namespaces"
  # no IPv6: the only addresses are the ones given here
  in_ns "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ -w $f ] && echo 1 >$f; done; true'
  in_ns "$ns" ip link set lo up
  # created inside the namespaces: no interface ever appears in this machine's own namespace
  in_ns "$ns" ip link add eth0 type veth peer name "v-$h" netns "$(ns_of switch)"
  in_ns "$(ns_of switch)" ip link set "v-$h" master br0 up
  in_ns "$ns" ip addr add "$(addr_of "$h")/24" dev eth0
  in_ns "$ns" ip link set eth0 up
  [[ -z ${OMPML_LC_RATE:-} ]] || shape_host "$h" "$OMPML_LC_RATE"
}

# shape_host NAME RATE|off: a token bucket (tc tbf) on NAME's eth0, its sending side; RATE as
# tc writes it (100mbit, 1gbit, 10gbit). The bucket holds OMPML_LC_BURST bytes, by default 5 ms
# at RATE (at least 64 KiB): a message smaller than that passes at the link's own speed after a
# pause (measured at 1gbit: 16 KiB buckets gave 0.83 Gbit/s on 16 MB messages, 625 KB ones
# 0.96). netem (delay) is not in this kernel; tbf is.
shape_host() {
  local ns=$(ns_of "$1") rate=$2 bps burst
  [[ -e /run/netns/$ns ]] || die "no host $1"
  in_ns "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
  [[ $rate == off ]] && return 0
  [[ $rate =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || die "rate '$rate': give NUMBER{bit,kbit,mbit,gbit}, or off"
  case ${BASH_REMATCH[2]} in
    bit) bps=${BASH_REMATCH[1]} ;;
    kbit) bps=$((BASH_REMATCH[1] * 1000)) ;;
    mbit) bps=$((BASH_REMATCH[1] * 1000000)) ;;
    gbit) bps=$((BASH_REMATCH[1] * 1000000000)) ;;
  esac
  if [[ -n ${OMPML_LC_BURST:-} ]]; then
    burst=$OMPML_LC_BURST
  else
    burst=$((bps / 8 / 200))
    ((burst >= 65536)) || burst=65536
  fi
  in_ns "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
}

# pids_in_ns INODE...: processes whose network namespace is one of these (nsfs inode numbers).
# One stat over /proc: lines "/proc/PID/ns/net net:[INODE]".
pids_in_ns() {
  local want=" $* "
  stat -c '%n %N' /proc/[0-9]*/ns/net 2>/dev/null | while read -r path _ _ target; do
    target=${target//\'/}
    target=${target#net:[}
    target=${target%]}
    if [[ $want == *" $target "* ]]; then
      path=${path#/proc/}
      echo "${path%%/*}"
    fi
  done
  return 0
}

# any_alive PID...: one of them is still running.
any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

# ns_inodes: the nsfs inode of each namespace up recorded (also after they were deleted).
ns_inodes() { cat "$DIR/run/ns-inodes" 2>/dev/null || true; }

# not_me PID...: drops this shell and its ancestors (down may be run from inside the cluster).
not_me() {
  local p q anc=" "
  q=$$
  while [[ $q -gt 1 ]]; do anc+="$q "; q=$(awk '/^PPid:/ {print $2}' "/proc/$q/status" 2>/dev/null || echo 1); done
  for p in "$@"; do
    if [[ $anc != *" $p "* ]]; then echo "$p"; fi
  done
  return 0
}

# kill_ns_procs SIGNAL INODE...: signal every process of those namespaces; prints how many.
kill_ns_procs() {
  local sig=$1 pids
  shift
  mapfile -t pids < <(not_me $(pids_in_ns "$@"))
  ((${#pids[@]} == 0)) || kill "-$sig" "${pids[@]}" 2>/dev/null || true
  echo "${#pids[@]}"
}

# ---- slurm.conf ---------------------------------------------------------------------------
write_conf() {
  local n=$1 k gpus
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
  gpus=$(sl_fake_gpus "$DIR" "$NGPU")
  for ((k = 1; k <= n; k++)); do echo "node$k"; done >"$DIR/etc/nodes"
  {
    echo "# Written by tools/local-cluster.sh: $n nodes in network namespaces; private to $DIR."
    echo "ClusterName=ompmllocal"
    echo "SlurmctldHost=head($(addr_of head))"
    sl_conf_common "$DIR"
    cat <<EOF
# every slurmd has its own files (%n: its node name); they share one port, each in its namespace
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmdSpoolDir=$DIR/spool/%n
SlurmdLogFile=$DIR/log/slurmd-%n.log
# a node that stops answering is DOWN after this many seconds, and its jobs end (NODE_FAIL)
SlurmdTimeout=${OMPML_LC_SLURMD_TIMEOUT:-20}
# node-local temporary space, as on a cluster: srun --mpi=pmix makes spmix_appdir_<uid>_<job>.<step>
# there, which would collide in one shared /tmp
TmpFS=$DIR/tmp/%n
EOF
    for ((k = 1; k <= n; k++)); do
      echo "NodeName=node$k NodeHostname=node$k NodeAddr=$(addr_of "node$k") CPUs=$CPUS RealMemory=1000 Gres=gpu:$NGPU State=UNKNOWN"
    done
    echo "PartitionName=gpu Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP"
    echo "PartitionName=cpu Nodes=node[1-$n] Default=NO MaxTime=INFINITE State=UP"
  } >"$CONF"
  echo "NodeName=node[1-$n] Name=gpu File=$gpus" >"$DIR/etc/gres.conf"
}

# ---- up -----------------------------------------------------------------------------------
UP_MADE=0 UP_DONE=0
up_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if ((UP_MADE && !UP_DONE)); then
    say "up did not finish (exit $rc): taking down what it made"
    cmd_down || true
    ((rc != 0)) || rc=1
  fi
  exit "$rc"
}

# stage NAME: announces that a stage of up is done; the test hook may stop up here.
stage() {
  say "[$1] done"
  if [[ ${OMPML_LC_STOP_AT:-} == "$1" ]]; then
    say "test hook: stopping with ${OMPML_LC_STOP_SIGNAL:-TERM} after stage $1"
    case ${OMPML_LC_STOP_SIGNAL:-TERM} in
      ERR) false ;;
      HOLD) say "test hook: holding after stage $1 until a signal comes"; while :; do sleep 0.2; done ;;
      *) kill -s "${OMPML_LC_STOP_SIGNAL:-TERM}" $$; sleep 1 ;;  # the trap runs after sleep
    esac
  fi
}

cmd_up() {
  # Until up starts making things (UP_MADE), an exit takes nothing down: a refusal below must
  # not remove a cluster that is up.
  trap up_exit EXIT
  local n=${1:-}
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 200)) || die "usage: $ME up N (1 <= N <= 200 nodes)"
  [[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, SlurmUser=root)"
  sl_need_programs /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch
  local p
  for p in ip tc nsenter unshare hostname; do
    command -v "$p" >/dev/null || die "$p not found (iproute2, util-linux, hostname)"
  done
  [[ -z $(our_netns) ]] || die "namespaces $(echo $(our_netns)) exist: the cluster is up, or an earlier one was killed; run '$ME down' first"
  ! findmnt -rn -o TARGET | grep -qF "$DIR/" || die "something is mounted under $DIR; run '$ME down' first"
  for p in "$DIR"/run/*.pid; do
    sl_pid_alive "$p" && die "$(basename "$p" .pid) still running (pid $(<"$p")); run '$ME down' first"
  done

  UP_MADE=1
  # fresh state: no jobs or node state from an earlier cluster
  rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/dev" "$DIR/run" "$DIR/etc" "$DIR/tmp"
  write_conf "$n"
  : >"$DIR/run/namespaces"

  ip netns add "$(ns_of switch)"
  echo "$(ns_of switch)" >>"$DIR/run/namespaces"
  in_ns "$(ns_of switch)" ip link set lo up
  in_ns "$(ns_of switch)" ip link add br0 type bridge
  in_ns "$(ns_of switch)" ip link set br0 up
  local h
  for h in head $(nodes); do add_host "$h"; done
  for p in $(<"$DIR/run/namespaces"); do stat -L -c %i "/run/netns/$p"; done >"$DIR/run/ns-inodes"
  stage network

  sl_start_munge "$DIR"
  stage munge
  start_daemon head /usr/sbin/slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
  stage slurmctld
  for h in $(nodes); do
    mkdir -p "$DIR/spool/$h" "$DIR/tmp/$h"
    start_daemon "$h" /usr/sbin/slurmd -f "$CONF" -N "$h" || die "slurmd on $h failed; see $DIR/log/slurmd-$h.log"
  done
  stage slurmd
  say "waiting for $n nodes to be idle"
  stage wait
  if ! sl_wait_idle 60 $(nodes); then
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR"/log/slurmd-*.log >&2 || true
    die "the nodes did not become idle"
  fi
  UP_DONE=1
  trap - EXIT INT TERM HUP
  say "up: $n nodes (node1..node$n, $NET.1-$n; head $(addr_of head)), $CPUS CPUs and gpu:$NGPU each," \
    "partitions gpu,cpu; SLURM_CONF=$CONF; run clients with '$ME exec CMD'"
}

# ---- down ---------------------------------------------------------------------------------
cmd_down() {
  local h f inodes i left
  local -a files=() pids=()
  # the daemons first, all at once (slurmctld takes seconds to save its state), by their pid
  # files; then everything still in the cluster's namespaces (job steps, ranks, batch scripts,
  # clients); then the namespaces; munge last
  for f in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid"; do
    if sl_pid_alive "$f"; then files+=("$f"); pids+=("$(<"$f")"); else rm -f "$f"; fi
  done
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      any_alive "${pids[@]}" || break
      sleep 0.1
    done
    for f in "${files[@]}"; do sl_stop_pidfile "$(basename "$f" .pid)" "$f"; done  # KILL what is left
  fi
  inodes=$(ns_inodes)
  if [[ -n $inodes ]]; then
    left=$(kill_ns_procs TERM $inodes)
    for ((i = 0; i < 30 && left > 0; i++)); do
      sleep 0.1
      left=$(pids_in_ns $inodes | wc -l)
    done
    for ((i = 0; i < 100 && left > 0; i++)); do
      left=$(kill_ns_procs KILL $inodes)
      ((left == 0)) || sleep 0.1
    done
    ((left == 0)) || say "warning: $left processes still in the cluster's namespaces"
  fi
  for h in $(our_netns); do ip netns del "$h" || say "warning: ip netns del $h failed"; done
  sl_stop_pidfile munged "$DIR/run/munged.pid"
  say "down ($DIR; logs kept in $DIR/log)"
}

# ---- the rest -----------------------------------------------------------------------------
cmd_crash() {
  local h=${1:-} ino n
  [[ $h =~ ^node[0-9]+$ && -e /run/netns/$(ns_of "$h") ]] || die "usage: $ME crash nodeK (a node of the cluster)"
  ino=$(stat -L -c %i "/run/netns/$(ns_of "$h")")
  n=$(kill_ns_procs KILL "$ino")
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -z $(pids_in_ns "$ino") ]] && break
    sleep 0.1
  done
  rm -f "$DIR/run/slurmd-$h.pid"
  say "crash: killed $n processes on $h (slurmd, job steps, ranks)"
}

# revive NODE: start NODE's slurmd again after a crash, as a diskless node reboots: its spool
# and temporary space start empty (the killed step's PMIx socket left in the spool makes the
# next step of the same job id fail on the node with "Cannot bind() UNIX socket
# .../stepd.slurm.pmix.J.S: Address already in use": a requeued job keeps its id). The
# controller returns the node to service when it registers (ReturnToService=2).
cmd_revive() {
  local h=${1:-}
  [[ $h =~ ^node[0-9]+$ && -e /run/netns/$(ns_of "$h") ]] || die "usage: $ME revive nodeK (a node of the cluster)"
  sl_pid_alive "$DIR/run/slurmd-$h.pid" && die "slurmd on $h is running"
  [[ -z $(ip netns pids "$(ns_of "$h")") ]] || die "$h still has processes: crash it first"
  rm -rf "$DIR/spool/$h" "$DIR/tmp/$h"
  mkdir -p "$DIR/spool/$h" "$DIR/tmp/$h"
  start_daemon "$h" /usr/sbin/slurmd -f "$CONF" -N "$h" || die "slurmd on $h failed; see $DIR/log/slurmd-$h.log"
  say "revive: slurmd on $h started"
}

cmd_status() {
  local h rc=0
  sl_pid_alive "$DIR/run/munged.pid" && echo "munged: running" || { echo "munged: not running"; rc=1; }
  sl_pid_alive "$DIR/run/slurmctld.pid" && echo "slurmctld on head: running" || { echo "slurmctld: not running"; rc=1; }
  for h in $(nodes); do
    sl_pid_alive "$DIR/run/slurmd-$h.pid" && echo "slurmd on $h: running" || { echo "slurmd on $h: not running"; rc=1; }
  done
  echo "namespaces: $(echo $(our_netns))"
  ((rc == 0)) && on head sinfo -N -o '%N %T %C %G'
  return $rc
}

cmd_leftovers() {
  local bad=0 p
  if [[ -n $(our_netns) ]]; then say "left: namespaces $(echo $(our_netns))"; bad=1; fi
  if findmnt -rn -o TARGET | grep -qF "$DIR/"; then say "left: mounts under $DIR"; bad=1; fi
  local -a pids=()
  [[ -z $(ns_inodes) ]] || mapfile -t pids < <(not_me $(pids_in_ns $(ns_inodes)))
  for p in $(grep -laF -- "$DIR/" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${p#/proc/}
    pids+=("${p%/cmdline}")
  done
  mapfile -t pids < <(not_me "${pids[@]}" | sort -un)
  if ((${#pids[@]})); then
    say "left: processes"
    ps -o pid,ppid,etime,args -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
    bad=1
  fi
  ((bad == 0)) && say "nothing left: no namespace $P-*, no mount under $DIR, no process of the cluster"
  return $bad
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  crash) shift; cmd_crash "$@" ;;
  revive) shift; cmd_revive "$@" ;;
  shape)
    shift
    [[ -n ${1:-} ]] || die "usage: $ME shape RATE|off"
    for h in head $(nodes); do shape_host "$h" "$1"; done
    say "links: ${1}" ;;
  exec)
    shift
    host=head
    if [[ ${1:-} == -n ]]; then host=${2:?usage: $ME exec [-n HOST] CMD...}; shift 2; fi
    (($#)) || die "usage: $ME exec [-n HOST] CMD..."
    on exec "$host" "$@" ;;
  leftovers) cmd_leftovers ;;
  *) sed -n '2,/^set -e/{/^set -e/!p}' "$0" >&2; exit 2 ;;
esac
