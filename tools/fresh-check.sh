#!/usr/bin/env bash
# Runs ompml's install, build and tests on a fresh Debian 12, as a new user's machine meets
# them: mmdebstrap makes a minimal bookworm root from Debian's archive (no gcc, no xz, none of
# the packages this machine got by hand), this source tree is copied in (what git tracks or
# would track: no build/, no data/*.h5) with its history (.git, as a user's clone has it: the
# performance gate builds its baseline commit), tools/install-deps.sh runs inside, then COMMAND
# (default: .ci/steps, everything CI checks). A missing install step fails here, not on a
# user's machine. The CUDA toolkit, where this machine has one at /usr/local/cuda, is
# bind-mounted read-only (it is not a Debian package).
#
#   tools/fresh-check.sh                          # CI's checks (root; about 25 min on 2 cores)
#   tools/fresh-check.sh -- tools/quickstart.sh   # the README's first command on a fresh machine
#   tools/fresh-check.sh --keep DIR -- bash       # keep the root in DIR afterwards, to look inside
#
# Options: --root DIR (where to build the root; default a new /var/tmp/ompml-fresh.*),
# --keep (do not delete it). Env: OMPML_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Every mount is undone and every process left inside the root is killed on every exit path
# (success, failure, Ctrl-C, TERM); the root is deleted only when no mount remains in it.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
root="" keep=0
while (($#)); do
  case $1 in
    --root) root=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "fresh-check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
(($#)) || set -- .ci/steps
[ "$(id -u)" -eq 0 ] || { echo "fresh-check.sh: run as root (mmdebstrap, mount, chroot)" >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
mirror=${OMPML_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -z "$root" ]; then root=$(mktemp -d /var/tmp/ompml-fresh.XXXXXX); fi
root=$(realpath -m "$root")
bound=0 # whether this script bound the root onto itself (below)
start=$SECONDS
stamp() { echo "== [fresh $((SECONDS - start)) s] $*"; }

mounts_inside() { findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r "/") == 1' | sort -r; }
cleanup() {
  local rc=$? p
  set +e
  inside() { for p in /proc/[0-9]*; do [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && echo "${p#/proc/}"; done; }
  for _ in $(seq 50); do # processes left inside (test daemons, stray ranks): kill, until gone
    p=$(inside)
    [ -z "$p" ] && break
    kill -9 $p 2>/dev/null
    sleep 0.1
  done
  while read -r m; do [ -n "$m" ] && umount -l "$m"; done < <(mounts_inside)
  ((bound)) && umount -l "$root" && bound=0
  if [ -n "$(mounts_inside)" ] || ((bound)); then
    echo "fresh-check.sh: mounts remain under $root; not deleting it" >&2
  elif ((keep)); then
    echo "fresh-check.sh: root kept in $root"
  else
    rm -rf --one-file-system "$root"
  fi
  stamp "end (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stamp "mmdebstrap --variant=apt bookworm $root ($mirror)"
sec=${mirror%/debian}/debian-security
mmdebstrap --quiet --variant=apt bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $sec bookworm-security main"

# What a real machine has and mmdebstrap leaves out: localhost in /etc/hosts (Slurm resolves
# it), a resolver for apt.
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$(hostname)" >"$root/etc/hosts"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# The root a mount point, as / is on a real machine (a private bind of itself): a mount namespace
# made inside (`unshare --mount`: tests/check_disk_full.sh) makes / private first, which fails
# ("cannot change root filesystem propagation") on a directory that is not a mount point.
if ! mountpoint -q "$root"; then
  mount --bind "$root" "$root" && bound=1 && mount --make-private "$root"
fi
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
if [ -d /usr/local/cuda ]; then
  mkdir -p "$root/usr/local/cuda"
  mount --bind "$(readlink -f /usr/local/cuda)" "$root/usr/local/cuda"
  mount -o remount,bind,ro "$root/usr/local/cuda"
  stamp "CUDA toolkit bound read-only at /usr/local/cuda"
fi

stamp "copy the source tree (tracked and untracked, not ignored) to /ompml"
mkdir -p "$root/ompml"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
  tar --null --ignore-failed-read -T - -cf -) | tar -C "$root/ompml" -xf -

stamp "copy the repository's history to /ompml/.git (tools/perf-compare.sh builds the baseline commit from it)"
git clone --quiet --bare "$src" "$root/ompml/.git"
git -C "$root/ompml" config core.bare false
# The index, read from HEAD and checked against the copied files: without one, git sees every
# file as changed, and each build would call itself "<commit>-dirty" (cmake/build_info.cmake).
git -C "$root/ompml" reset --quiet

stamp "inside: tools/install-deps.sh, then $*"
# In the background, then `wait`: bash runs a trap only after a foreground command ends, so a
# TERM or Ctrl-C during an hour-long command would otherwise leave the mounts until then.
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c 'cd /ompml && s=$SECONDS && tools/install-deps.sh &&
           echo "== [inside $((SECONDS - s)) s] dependencies installed" && exec "$@"' bash "$@" &
wait $!
