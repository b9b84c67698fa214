#!/bin/sh
# tools/bundle-runtime.sh end to end: pack ompml-train of this build (XZ_LEVEL=0), unpack it, and
# train a few steps through run.sh as an MPI singleton (which starts the bundle's orted) and on
# 2 ranks through `run.sh mpirun`. The node here still has the toolchain, so a library missing
# from the bundle would be found on the system: every shared library that the runs load
# (LD_DEBUG=libs) must come from the bundle, except glibc (libc, libm ... as run by the node's
# /bin/sh, dirname, and the programs themselves with --no-glibc), the libraries of /bin/sh, the
# NVIDIA driver, and the device images that LLVM's host offload plugin writes to
# $TMPDIR/tmpfile_* and loads.
#   check_bundle.sh SOURCE_DIR BUILD_DIR OMPML_DATA WORKDIR
set -eu
src=$1 build=$2 data=$3 work=$4
rm -rf "$work" && mkdir -p "$work/x" "$work/ld" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

XZ_LEVEL=0 "$src/tools/bundle-runtime.sh" -p ompml-train -o b.tar.xz "$build"
(cd x && tar xJf ../b.tar.xz)
rt=$work/x/ompml-runtime
"$data" synth --train 256 --test 64 --features 12 --classes 3 --seed 5 -o d.h5 >/dev/null
args="--data d.h5 --layers 12,8,3 --batch 32 --epochs 1 --max-steps 4"

# shellcheck disable=SC2086
LD_DEBUG=libs LD_DEBUG_OUTPUT=$work/ld/single "$rt/run.sh" ompml-train $args >single.log 2>&1 ||
    { cat single.log; fail "run.sh ompml-train failed"; }
cat single.log
grep -q '^final: test_acc ' single.log || fail "singleton: no final line"
if [ -d "$rt/openmpi" ]; then
    grep -q -E 'initialize program: (orted|.*/ompml-runtime/bin/orted)$' ld/single.* ||
        fail "the singleton did not start the bundle's orted"
    # shellcheck disable=SC2086
    LD_DEBUG=libs LD_DEBUG_OUTPUT=$work/ld/np2 "$rt/run.sh" mpirun -np 2 --oversubscribe --bind-to none \
        ompml-train $args >np2.log 2>&1 || { cat np2.log; fail "run.sh mpirun -np 2 ompml-train failed"; }
    cat np2.log
    grep -q 'mpi *2 ranks' np2.log || fail "mpirun: not 2 ranks"
    grep -q '^final: test_acc ' np2.log || fail "mpirun: no final line"
fi

allowed=$(ldd /bin/sh | awk '$2 == "=>" {print $3} $1 ~ /^\// {print $1}')
outside=$(cat ld/* | sed -n 's/^ *[0-9]*:[[:space:]]*calling init: //p' | sort -u | while read -r lib; do
    case $lib in "$rt"/*|"${TMPDIR:-/tmp}"/tmpfile_*) continue ;; esac
    case ${lib##*/} in ld-linux*|libc.so*|libm.so*|libmvec.so*|libpthread.so*|libdl.so*|librt.so*|\
                       libresolv.so*|libutil.so*|libanl.so*|libcuda.so*|libnvidia-*) continue ;; esac
    echo "$allowed" | grep -qxF "$lib" || echo "$lib"
done)
[ -z "$outside" ] || fail "libraries loaded from outside the bundle: $outside"
echo "bundle OK: $(du -h b.tar.xz | cut -f1) archive (XZ_LEVEL=0)"
rm -rf x b.tar.xz # hundreds of MB with the offload runtime; the logs stay
