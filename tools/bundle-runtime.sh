#!/usr/bin/env bash
# bundle-runtime.sh: pack a build's programs (bin/*) and shared libraries (lib/lib*.so) with the
# shared libraries a compute node may lack, into one tar.xz with a launcher:
#
#   tools/bundle-runtime.sh [options] BUILD_DIR
#   tar xJf ompml-runtime.tar.xz && ompml-runtime/run.sh PROGRAM [ARGS...]
#
# The dependency closure comes from ldd over every packed program and library: that brings the
# LLVM 19 offload runtime (libomptarget.so.19.1, which holds its CUDA plugin in LLVM 19, and its
# own closure: libLLVM, libz3, libicu, libxml2, libedit ...), libomp, Open MPI, HDF5, libcudart.
# Open MPI also dlopen()s its MCA components at MPI_Init, which ldd cannot see: their directory
# is packed too (lib/openmpi-mca) and run.sh points Open MPI at it.
# Never packed: the NVIDIA driver (libcuda.so.1, libnvidia-*): it must match the node's kernel
# module, so the node's own copy is used.
#
# Options:
#   -o FILE            output archive (default: ompml-runtime-<build dir name>.tar.xz)
#   -p PROGRAM         pack only this program of BUILD_DIR/bin (repeatable; default: all)
#   --no-glibc         leave out glibc (libc, libm, ld-linux ...): smaller, needs a node glibc
#                      at least as new as the build machine's (2.36 on Debian 12)
#   --no-libstdcxx     leave out libstdc++ and libgcc_s: needs a node libstdc++ as new as ours
#   --no-mpi-plugins   leave out Open MPI's MCA components (programs that never call MPI_Init)
#   -h, --help         this text
# Environment: XZ_LEVEL (default 6) trades archive size for packing time.
#
# With glibc packed, run.sh starts programs through the packed dynamic loader, so the packed
# libc is used consistently even on a node with an older glibc.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bundle-runtime.sh: $*" >&2; exit 1; }

out="" ; programs=() ; with_glibc=1 ; with_libstdcxx=1 ; with_mpi_plugins=1 ; build=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -o) out=${2:?-o needs a file}; shift 2 ;;
        -p) programs+=("${2:?-p needs a program name}"); shift 2 ;;
        --no-glibc) with_glibc=0; shift ;;
        --no-libstdcxx) with_libstdcxx=0; shift ;;
        --no-mpi-plugins) with_mpi_plugins=0; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) [[ -z $build ]] || die "one build directory only (got '$build' and '$1')"; build=$1; shift ;;
    esac
done
[[ -n $build ]] || { usage >&2; exit 2; }
[[ -d $build/bin ]] || die "'$build' has no bin/ directory: build it first (cmake --build $build)"
build=$(cd "$build" && pwd)
name=ompml-runtime
[[ -n $out ]] || out="$PWD/ompml-runtime-$(basename "$build").tar.xz"
[[ $out = /* ]] || out="$PWD/$out"

# What to pack from the build: the named programs (or all), and every shared library it built.
if [[ ${#programs[@]} -eq 0 ]]; then
    for f in "$build"/bin/*; do [[ -f $f && -x $f ]] && programs+=("$(basename "$f")"); done
fi
[[ ${#programs[@]} -gt 0 ]] || die "no programs in $build/bin"
for p in "${programs[@]}"; do [[ -x $build/bin/$p ]] || die "no program '$p' in $build/bin"; done
mapfile -t built_libs < <(find "$build" -path "$build/CMakeFiles" -prune -o -name 'lib*.so*' -type f -print)

is_glibc() { [[ $1 =~ ^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale)\.so ]]; }
is_libstdcxx() { [[ $1 =~ ^(libstdc\+\+|libgcc_s)\.so ]]; }
is_driver() { [[ $1 =~ ^(libcuda\.so|libnvidia-|libnvcuvid|linux-vdso) ]]; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
mkdir -p "$root/bin" "$root/lib"

declare -A seen=()
# Adds the ldd closure of one ELF file to lib/ (ldd already follows the whole tree).
add_closure() {
    local line soname path
    while IFS= read -r line; do
        if [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]]not[[:space:]]found ]]; then
            die "$1 needs ${BASH_REMATCH[1]}, which is not found on this machine either"
        elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]](/[^[:space:]]+) ]]; then
            soname=${BASH_REMATCH[1]}; path=${BASH_REMATCH[2]}
        elif [[ $line =~ ^[[:space:]]*(/[^[:space:]]+)[[:space:]]\( ]]; then
            path=${BASH_REMATCH[1]}; soname=$(basename "$path") # the dynamic loader itself
        else
            continue
        fi
        [[ -z ${seen[$soname]:-} ]] || continue
        seen[$soname]=1
        is_driver "$soname" && continue
        [[ $with_glibc -eq 0 ]] && is_glibc "$soname" && continue
        [[ $with_libstdcxx -eq 0 ]] && is_libstdcxx "$soname" && continue
        cp -L "$path" "$root/lib/$soname" # -L: the real file under the name the loader asks for
    done < <(ldd "$1" 2>/dev/null || true)
}

for p in "${programs[@]}"; do
    cp -L "$build/bin/$p" "$root/bin/$p"
    add_closure "$build/bin/$p"
done
for l in "${built_libs[@]}"; do
    cp -L "$l" "$root/lib/$(basename "$l")"
    seen[$(basename "$l")]=1
    add_closure "$l"
done

# Open MPI's components, found from the libmpi that was packed.
mpi_dir=""
if [[ $with_mpi_plugins -eq 1 && -e $root/lib/libmpi.so.40 ]]; then
    libmpi=$(ldconfig -p | awk '/libmpi\.so\.40 .*x86-64/ {print $NF; exit}')
    [[ -n $libmpi ]] || libmpi=$(find /usr/lib /usr/lib64 /opt -name 'libmpi.so.40' 2>/dev/null | head -1)
    mca=$(find "$(dirname "$(readlink -f "$libmpi")")" -maxdepth 1 -type d -name 'openmpi*' | head -1)
    if [[ -n $mca ]]; then
        cp -rL "$mca" "$root/lib/openmpi-mca"
        for c in "$root"/lib/openmpi-mca/*.so; do add_closure "$c"; done
        mpi_dir=lib/openmpi-mca
    else
        echo "bundle-runtime.sh: warning: libmpi packed but its MCA component directory was not found" >&2
    fi
fi

loader=""
[[ -e $root/lib/ld-linux-x86-64.so.2 ]] && loader=lib/ld-linux-x86-64.so.2

cat > "$root/run.sh" <<RUN
#!/bin/sh
# Launcher made by tools/bundle-runtime.sh from $build:
#   run.sh PROGRAM [ARGS...]     (programs: ${programs[*]})
# Puts the packed libraries first on the search path and starts bin/PROGRAM. The NVIDIA driver
# (libcuda.so.1) comes from the node.
here=\$(cd "\$(dirname "\$0")" && pwd)
if [ \$# -lt 1 ] || [ ! -x "\$here/bin/\$1" ]; then
    echo "usage: \$0 PROGRAM [ARGS...]; programs: \$(ls "\$here/bin" | tr '\n' ' ')" >&2
    exit 2
fi
prog=\$1; shift
export LD_LIBRARY_PATH="\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
mpi_dir="$mpi_dir"
if [ -n "\$mpi_dir" ]; then
    # Open MPI looks for its components under its build-time prefix; point it here.
    export OMPI_MCA_mca_base_component_path="\$here/\$mpi_dir"
fi
loader="$loader"
if [ -n "\$loader" ]; then
    # The packed glibc must be started by its own dynamic loader.
    exec "\$here/\$loader" --library-path "\$LD_LIBRARY_PATH" --argv0 "\$prog" "\$here/bin/\$prog" "\$@"
fi
exec "\$here/bin/\$prog" "\$@"
RUN
chmod +x "$root/run.sh"

mkdir -p "$(dirname "$out")"
(cd "$stage" && tar cf - "$name" | xz -T0 "-${XZ_LEVEL:-6}" > "$out")
nlibs=$(find "$root/lib" -name '*.so*' -type f | wc -l)
echo "bundle: $out"
echo "  programs: ${programs[*]}"
echo "  libraries: $nlibs (glibc: $([[ $with_glibc -eq 1 ]] && echo packed || echo left out)," \
     "libstdc++: $([[ $with_libstdcxx -eq 1 ]] && echo packed || echo left out)," \
     "Open MPI components: ${mpi_dir:-none})"
echo "  unpacked: $(du -sh "$root" | cut -f1), archive: $(du -h "$out" | cut -f1)"
