#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/cluster/) and for trying
# `hydra/launcher=slurm` without a cluster:
#
#   scripts/slurm_local.sh start    # install slurm-wlm and munge if missing (root, apt-get), start munged,
#                                   # slurmctld and slurmd, wait until sinfo shows the node idle
#   scripts/slurm_local.sh status   # exit 0 when running (prints sinfo), 3 when not
#   scripts/slurm_local.sh stop     # cancel this cluster's jobs, stop the daemons this script started
#   eval "$(scripts/slurm_local.sh env)"   # point sbatch, srun, squeue, sinfo, scancel at it
#
# Everything lives in one folder, $GEXINFER_SLURM_DIR (default /tmp/gexinfer-slurm): slurm.conf, a
# munge key and socket of its own (a private munged, never /etc/munge), state, spool, logs and the
# daemons' PIDs (pids). No system file is written: the daemons and clients read SLURM_CONF. Ports
# $GEXINFER_SLURM_PORT and the next one (default 16817, 16818), so a system SLURM is not disturbed.
#
# Exit status of start: 0 running; 2 it cannot run here (not Linux, not root to install, no apt-get,
# the install failed), with one line on stderr that says why; 1 a daemon did not come up (its log tail).
set -uo pipefail

DIR=${GEXINFER_SLURM_DIR:-/tmp/gexinfer-slurm}
PORT=${GEXINFER_SLURM_PORT:-16817}
CONF=$DIR/slurm.conf
PIDS=$DIR/pids
MUNGE_SOCKET=$DIR/munge/munge.socket.2
NODE=$(hostname -s 2>/dev/null || hostname)
export SLURM_CONF=$CONF

say() { echo "slurm_local: $*" >&2; }
cannot() { say "$*"; exit 2; }

pid_of() {  # pid_of NAME: the recorded PID of a daemon this script started, if it still runs as NAME
  [[ -f $PIDS ]] || return 1
  local pid
  pid=$(awk -v n="$1" '$1 == n {print $2}' "$PIDS")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1"* ]] && echo "$pid"
}

running() { pid_of munged >/dev/null && pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null; }

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1; }

install() {
  local missing=()
  for cmd in munged munge unmunge slurmctld slurmd sinfo sbatch srun scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(uname -s) == Linux ]] || cannot "not Linux: no ${missing[*]}; install slurm-wlm and munge"
  [[ $(id -u) -eq 0 ]] || cannot "not root: cannot install slurm-wlm and munge (missing ${missing[*]}); run as root or install them"
  command -v apt-get >/dev/null 2>&1 || cannot "apt-get unavailable: cannot install slurm-wlm and munge (missing ${missing[*]})"
  say "installing slurm-wlm and munge (apt-get, about a minute)"
  mkdir -p "$DIR/log"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge; } \
      >"$DIR/log/apt.log" 2>&1; then
    cannot "apt-get install slurm-wlm munge failed: $(tail -1 "$DIR/log/apt.log")"
  fi
  for cmd in "${missing[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || cannot "slurm-wlm and munge installed, but $cmd is still missing"
  done
}

write_conf() {
  local cpus mem
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # the CPUs, not the threads a caller allows itself
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))  # MB, 80% of the RAM
  mkdir -p "$DIR"/{state,spool,log,munge}
  cat >"$CONF" <<EOF
# One-node cluster of scripts/slurm_local.sh (written at each start).
ClusterName=gexinfer
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
# Short grace from SIGTERM to SIGKILL (scancel, requeue, time limit), and no minimum job age to wait.
KillWait=10
MinJobAge=60
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemon() {  # start_daemon NAME COMMAND...: in the background, in its own session, PID recorded
  local name=$1; shift
  setsid "$@" >>"$DIR/log/$name.out" 2>&1 </dev/null &
  echo "$name $!" >>"$PIDS"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
  local seconds=$1 what=$2; shift 2
  for ((i = 0; i < seconds * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  say "$what did not come up within ${seconds}s"
  return 1
}

fail_with_logs() {  # fail_with_logs [keep]: show the daemons' log tails, stop them unless "keep"
  for log in "$DIR"/log/*.out "$DIR"/log/*.log; do
    [[ -s $log && $log != */apt.log ]] && { echo "--- $log" >&2; tail -15 "$log" >&2; }
  done
  [[ ${1:-} == keep ]] || stop >/dev/null 2>&1
  exit 1
}

munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }
node_idle() { [[ $(node_state) == idle* ]]; }
node_up() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing) ]]; }  # in use by another session: fine

start() {
  if running; then
    munge_ok >/dev/null 2>&1 || cannot "not root: the running cluster's munge socket ($MUNGE_SOCKET) is root's"
    say "already running ($CONF)"
    node_up || wait_for 60 "node $NODE (up)" node_up || fail_with_logs keep
    return 0
  fi
  stop >/dev/null 2>&1  # whatever is left of an earlier start
  install
  [[ $(id -u) -eq 0 ]] || cannot "not root: the daemons run as root (SlurmUser=root)"
  write_conf
  : >"$PIDS"
  if [[ ! -s $DIR/munge/munge.key ]]; then  # a key of its own, never /etc/munge/munge.key
    mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null \
      || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 700 "$DIR/munge"
  chmod 600 "$DIR/munge/munge.key"
  start_daemon munged munged --foreground --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log"
  wait_for 20 munged munge_ok || fail_with_logs
  start_daemon slurmctld slurmctld -D -c -f "$CONF"
  wait_for 30 slurmctld timeout 5 scontrol ping || fail_with_logs
  start_daemon slurmd slurmd -D -f "$CONF" -N "$NODE"
  wait_for 60 "node $NODE (idle)" node_idle || fail_with_logs
  say "running: $(node_state) node $NODE, $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) CPUs; export SLURM_CONF=$CONF"
}

stop() {
  if pid_of slurmctld >/dev/null; then
    timeout 10 scancel --full --quiet --partition=debug 2>/dev/null
    for ((i = 0; i < 20; i++)); do  # let the jobs' steps end while slurmd still runs
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  local stopped=()
  for name in slurmd slurmctld munged; do
    local pid
    pid=$(pid_of "$name") || continue
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    stopped+=("$name $pid")
  done
  rm -f "$PIDS"
  [[ ${#stopped[@]} -gt 0 ]] && say "stopped ${stopped[*]}"
  return 0
}

status() {
  if running; then
    echo "running: SLURM_CONF=$CONF"
    timeout 10 sinfo
    return 0
  fi
  echo "not running ($DIR)"
  return 3
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 64 ;;
esac
