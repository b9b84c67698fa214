# Pieces shared by the private Slurm clusters of the tests and tools (sourced, bash):
# tests/slurm/cluster.sh (one node on this host) and tools/local-cluster.sh (N nodes, each in
# its own network and UTS namespace). Daemons are only ever stopped by their own pid files.
# The caller defines say MSG and die MSG (die exits).

# sl_pid_alive FILE: the pid in FILE names a running process.
sl_pid_alive() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# sl_stop_pidfile NAME FILE: TERM, wait up to 10 s, then KILL; removes FILE.
sl_stop_pidfile() {
  local name=$1 file=$2 pid i
  if ! sl_pid_alive "$file"; then
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

# sl_need_programs PROG...: each must be executable (the Debian packages slurm-wlm munge).
sl_need_programs() {
  local p
  for p in "$@"; do
    [[ -x $p ]] || die "$p not found: apt-get install -y slurm-wlm munge"
  done
}

# sl_start_munge DIR: a private munged with its own key (made once) and socket
# (DIR/munge/munge.socket), pid file DIR/run/munged.pid, log DIR/log/munged.log. A Unix
# socket on the filesystem: processes in other network namespaces reach it too.
sl_start_munge() {
  local dir=$1
  mkdir -p "$dir/munge" "$dir/run" "$dir/log"
  chmod 0700 "$dir/munge"
  if [[ ! -s $dir/munge/munge.key ]]; then
    (umask 077; head -c 1024 /dev/urandom >"$dir/munge/munge.key")
  fi
  /usr/sbin/munged --force \
    --socket="$dir/munge/munge.socket" \
    --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" \
    --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" \
    || die "munged failed to start; see $dir/log/munged.log"
}

# sl_conf_common DIR: the slurm.conf lines both clusters share (auth through DIR's munge, root
# as SlurmUser, no cgroups, a short requeue delay, finished jobs kept visible, state and the
# controller's files under DIR). The caller adds hosts, ports, node files, nodes, partitions.
sl_conf_common() {
  local dir=$1
  cat <<EOF
AuthType=auth/munge
CredType=cred/munge
# cred_expire: how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
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
SlurmctldPidFile=$dir/run/slurmctld.pid
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
EOF
}

# sl_fake_gpus DIR N: N plain files DIR/dev/gpu0.. that stand in for /dev/nvidiaN, and prints
# their File= pattern. Slurm drops a GPU GRES without File=; there is no cgroup device
# constraint here, so nothing is bound: jobs only get CUDA_VISIBLE_DEVICES.
sl_fake_gpus() {
  local dir=$1 n=$2 g
  mkdir -p "$dir/dev"
  for ((g = 0; g < n; g++)); do : >"$dir/dev/gpu$g"; done
  echo "$dir/dev/gpu[0-$((n - 1))]"
}

# sl_client CMD...: runs a Slurm client command where it reaches the controller; a cluster
# whose controller sits in another network namespace redefines it after sourcing this file.
sl_client() { "$@"; }

# sl_wait_idle TIMEOUT_S NODE... : until sinfo reports every NODE idle; on timeout says the
# states and returns 1.
sl_wait_idle() {
  local timeout=$1 deadline n states="" want
  shift
  deadline=$((SECONDS + timeout))
  want=$(printf '%s idle\n' "$@" | sort)
  while ((SECONDS < deadline)); do
    states=$(sl_client timeout 5 sinfo -h -N -n "$(IFS=,; echo "$*")" -o '%N %T' 2>/dev/null | sort -u || true)
    [[ $states == "$want" ]] && return 0
    sleep 0.2
  done
  say "nodes not idle within $timeout s: $(echo ${states:-none})"
  return 1
}
