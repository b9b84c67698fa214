#!/usr/bin/env bash
# bundle-runtime.sh: pack a build's programs (bin/*) and shared libraries (lib/lib*.so) with the
# shared libraries a compute node may lack, and with Open MPI's launcher, into one tar.xz:
#
#   tools/bundle-runtime.sh [options] BUILD_DIR
#   tar xJf ompml-runtime.tar.xz
#   ompml-runtime/run.sh PROGRAM [ARGS...]                         one process (an MPI singleton)
#   ompml-runtime/run.sh mpirun [MPIRUN-OPTIONS] PROGRAM [ARGS...]  MPI ranks (mpiexec likewise)
#
# The dependency closure comes from ldd over every packed program and library: that brings the
# LLVM 19 offload runtime (libomptarget.so.19.1, which holds its CUDA plugin in LLVM 19, and its
# own closure: libLLVM, libz3, libicu, libxml2, libedit ...), libomp, Open MPI, HDF5, libcudart.
# Never packed: the NVIDIA driver (libcuda.so.1, libnvidia-*): it must match the node's kernel
# module, so the node's own copy is used.
#
# Open MPI needs more than its libraries: an MPI_Init without mpirun (a singleton) starts the
# orted daemon, mpirun (orterun) starts ranks, and all of them dlopen() MCA components and read
# help texts and openmpi-mca-params.conf from their install directories. So when libmpi is
# packed, so are orterun and orted (in bin/, next to the programs, closure in lib/), and an
# install tree for Open MPI's files, which run.sh points Open MPI at with its relocation
# variables (OPAL_PREFIX, and OPAL_BINDIR, _PKGLIBDIR, _PKGDATADIR, _SYSCONFDIR):
#   openmpi/bin/    one script per executable (orted, orterun, mpirun, mpiexec, each program)
#                   that runs it through run.sh
#   openmpi/lib/    Open MPI's components (mca_*.so)
#   openmpi/lib/pmix/  external PMIx's components (Debian's libpmix2), for which run.sh sets
#                   PMIx's own relocation variables (PMIX_PKGLIBDIR, _PKGDATADIR, _SYSCONFDIR)
#   openmpi/share/  help texts of Open MPI and PMIx
#   openmpi/etc/    openmpi-mca-params.conf of the build machine (Debian's component choices)
# The scripts in openmpi/bin are what Open MPI starts: the singleton's orted (taken from the
# bindir), the ranks (run.sh puts openmpi/bin first on PATH, so `mpirun ... ompml-train` finds
# the script), and orted on other nodes (run.sh sets OMPI_MCA_orte_launch_agent to the script;
# that needs the bundle at the same path, without spaces, on every node, e.g. on a shared file
# system). So every packed executable runs with the bundle's environment and, with glibc
# packed, its loader.
# hwloc's PCI plugin is packed in lib/hwloc (HWLOC_PLUGINS_PATH), so that the node's hwloc
# plugins, built for another hwloc, are not loaded.
#
# Options:
#   -o FILE            output archive (default: ompml-runtime-<build dir name>.tar.xz)
#   -p PROGRAM         pack only this program of BUILD_DIR/bin (repeatable; default: all)
#   --no-glibc         leave out glibc (libc, libm, ld-linux ...): smaller, needs a node glibc
#                      at least as new as the build machine's (2.36 on Debian 12)
#   --no-libstdcxx     leave out libstdc++ and libgcc_s: needs a node libstdc++ as new as ours
#   --no-mpi-runtime   leave out Open MPI's launcher, daemon, components and help texts (only
#                      for programs that never call MPI_Init); --no-mpi-plugins is the old name
#   --no-cuda-libs     leave out the CUDA toolkit's libraries (libcudart, libcublas, libcublasLt:
#                      cublasLt alone is 540 MB): GPU nodes usually have them; the programs then
#                      find the node's (same major version as the build's, 13) through
#                      LD_LIBRARY_PATH, their RUNPATH (the build's CUDA lib directory, e.g.
#                      /usr/local/cuda/lib) or the node's ld.so.cache
#   -h, --help         this text
# Environment: XZ_LEVEL (default 6) trades archive size for packing time.
#
# With glibc packed, run.sh starts every packed executable through the packed dynamic loader
# (lib/ld-linux-x86-64.so.2 --library-path ...), so the packed libc is used consistently even on
# a node with an older glibc; it then does not export LD_LIBRARY_PATH, so that the node's own
# programs started from inside (/bin/sh running the scripts above, ssh) keep the node's libc.
# Without glibc, run.sh exports LD_LIBRARY_PATH with the packed libraries first.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bundle-runtime.sh: $*" >&2; exit 1; }

out="" ; programs=() ; with_glibc=1 ; with_libstdcxx=1 ; with_mpi=1 ; with_cuda=1 ; build=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -o) out=${2:?-o needs a file}; shift 2 ;;
        -p) programs+=("${2:?-p needs a program name}"); shift 2 ;;
        --no-glibc) with_glibc=0; shift ;;
        --no-libstdcxx) with_libstdcxx=0; shift ;;
        --no-mpi-runtime|--no-mpi-plugins) with_mpi=0; shift ;;
        --no-cuda-libs) with_cuda=0; shift ;;
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
for p in "${programs[@]}"; do
    [[ -x $build/bin/$p ]] || die "no program '$p' in $build/bin"
    case $p in orted|orterun|mpirun|mpiexec) die "a program may not be named '$p' (run.sh uses the name)" ;; esac
done
built_libs=()
[[ ! -d $build/lib ]] || mapfile -t built_libs < <(find "$build/lib" -maxdepth 1 -name 'lib*.so*' -type f)

is_glibc() { [[ $1 =~ ^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale)\.so ]]; }
is_libstdcxx() { [[ $1 =~ ^(libstdc\+\+|libgcc_s)\.so ]]; }
is_driver() { [[ $1 =~ ^(libcuda\.so|libnvidia-|libnvcuvid|linux-vdso) ]]; }
is_cuda_toolkit() { [[ $1 =~ ^(libcudart|libcublas|libcublasLt|libnvJitLink|libnvrtc)\.so ]]; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
mkdir -p "$root/bin" "$root/lib"

declare -A seen=() src=()
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
        src[$soname]=$path
        is_driver "$soname" && continue
        [[ $with_glibc -eq 0 ]] && is_glibc "$soname" && continue
        [[ $with_libstdcxx -eq 0 ]] && is_libstdcxx "$soname" && continue
        [[ $with_cuda -eq 0 ]] && is_cuda_toolkit "$soname" && continue
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

# Open MPI's run time (see the header): the install tree openmpi/.
with_mpi_runtime=0 ; with_pmix=0
if [[ $with_mpi -eq 1 && -n ${src[libopen-pal.so.40]:-} ]]; then
    # The ompi_info of the Open MPI whose libraries were packed: next to its libdir (a plain
    # prefix install), else on PATH (Debian's libdir is not next to bin/); checked below.
    opal_real=$(readlink -f "${src[libopen-pal.so.40]}")
    ompi_info=$(dirname "$opal_real")/../bin/ompi_info
    [[ -x $ompi_info ]] || ompi_info=$(command -v ompi_info || true)
    [[ -n $ompi_info ]] || die "libmpi is packed but Open MPI's ompi_info/orterun/orted are not installed" \
                              "(Debian: apt-get install openmpi-bin); or leave MPI out: --no-mpi-runtime"
    info_opal=$(ldd "$ompi_info" | awk '$1 == "libopen-pal.so.40" {print $3}')
    [[ $(readlink -f "$info_opal") = "$opal_real" ]] ||
        die "$ompi_info belongs to another Open MPI ($info_opal) than the packed $opal_real"
    # Its install directories (relocation variables in our environment would falsify them).
    declare -A dir=()
    while IFS='=' read -r k v; do dir[$k]=$v; done < <(
        for v in PREFIX EXEC_PREFIX BINDIR LIBDIR PKGLIBDIR DATAROOTDIR DATADIR PKGDATADIR SYSCONFDIR; do
            unset "OPAL_$v"
        done
        "$ompi_info" --parsable --path all | awk -F: '$1 == "path" {print $2 "=" $3}')
    for k in bindir pkglibdir pkgdatadir sysconfdir; do
        [[ -d ${dir[$k]:-} ]] || die "Open MPI's $k '${dir[$k]:-}' (from $ompi_info --path all) is not a directory"
    done
    with_mpi_runtime=1
    mp=$root/openmpi
    mkdir -p "$mp/bin" "$mp/lib" "$mp/share" "$mp/etc"
    for x in orterun orted; do
        [[ -x ${dir[bindir]}/$x ]] || die "no ${dir[bindir]}/$x (Debian: apt-get install openmpi-bin)"
        cp -L "${dir[bindir]}/$x" "$root/bin/$x"
        add_closure "$root/bin/$x"
    done
    for c in "${dir[pkglibdir]}"/*.so; do cp -L "$c" "$mp/lib/"; add_closure "$c"; done
    cp -L "${dir[pkgdatadir]}"/help-*.txt "$mp/share/"
    for f in openmpi-mca-params.conf openmpi-default-hostfile; do
        [[ ! -f ${dir[sysconfdir]}/$f ]] || cp -L "${dir[sysconfdir]}/$f" "$mp/etc/"
    done
    # An external PMIx (Debian: libpmix2) dlopen()s its own components (pmix_mca_*.so) from its
    # own pkglibdir (PMIx's mca_base_component_path would only add a directory to that one) and
    # has its own help texts, which join Open MPI's (no name is in both).
    if [[ -n ${src[libpmix.so.2]:-} ]]; then
        with_pmix=1
        pmix_lib=$(dirname "$(readlink -f "${src[libpmix.so.2]}")")
        compgen -G "$pmix_lib/pmix/pmix_mca_*.so" >/dev/null ||
            echo "bundle-runtime.sh: warning: no PMIx components in $pmix_lib/pmix" >&2
        mkdir -p "$mp/lib/pmix"
        for c in "$pmix_lib"/pmix/pmix_mca_*.so; do
            [[ ! -f $c ]] || { cp -L "$c" "$mp/lib/pmix/"; add_closure "$c"; }
        done
        for h in "$pmix_lib"/../share/pmix/help-*.txt; do [[ ! -f $h ]] || cp -L "$h" "$mp/share/"; done
    fi
    # Open MPI's bindir: scripts that run each packed executable through run.sh.
    for x in orted orterun mpirun mpiexec "${programs[@]}"; do
        cat > "$mp/bin/$x" <<WRAP
#!/bin/sh
# Made by tools/bundle-runtime.sh: runs $x through the bundle's run.sh.
exec "\$(dirname "\$0")/../../run.sh" $x "\$@"
WRAP
        chmod +x "$mp/bin/$x"
    done
fi

# hwloc (Open MPI's and PMIx's topology library) dlopen()s plugins from its own directory: pack
# the PCI one (device locality), and run.sh points hwloc here (HWLOC_PLUGINS_PATH), so that the
# node's plugins, built for another hwloc, are never loaded. The others (OpenCL, OpenGL,
# libxml2-XML) are left out: hwloc works without them.
hwloc_plugins=""
if [[ -n ${src[libhwloc.so.15]:-} ]]; then
    hwloc_plugins=lib/hwloc
    mkdir -p "$root/$hwloc_plugins"
    hp=$(dirname "$(readlink -f "${src[libhwloc.so.15]}")")/hwloc/hwloc_pci.so
    [[ ! -f $hp ]] || { cp -L "$hp" "$root/$hwloc_plugins/"; add_closure "$hp"; }
fi

loader=""
[[ -e $root/lib/ld-linux-x86-64.so.2 ]] && loader=lib/ld-linux-x86-64.so.2

cat > "$root/run.sh" <<RUN
#!/bin/sh
# Launcher made by tools/bundle-runtime.sh from $build:
#   run.sh PROGRAM [ARGS...]                          (programs: ${programs[*]})
#   run.sh mpirun [MPIRUN-OPTIONS] PROGRAM [ARGS...]  MPI ranks, each run through this script
# Starts bin/PROGRAM with the packed libraries (through the packed dynamic loader when glibc is
# packed) and points Open MPI, PMIx and hwloc at their files here. The NVIDIA driver
# (libcuda.so.1) comes from the node.
here=\$(cd "\$(dirname "\$0")" && pwd -P)
with_mpi=$with_mpi_runtime
usage() {
    echo "usage: \$0 PROGRAM [ARGS...]; programs: ${programs[*]}" >&2
    [ "\$with_mpi" = 0 ] || echo "       \$0 mpirun [MPIRUN-OPTIONS] PROGRAM [ARGS...]" >&2
    exit 2
}
[ \$# -ge 1 ] || usage
name=\$1; shift
prog=\$name
[ "\$with_mpi" = 0 ] || case \$prog in mpirun|mpiexec) prog=orterun ;; esac
case \$prog in */*|.*|'') usage ;; esac
[ -f "\$here/bin/\$prog" ] && [ -x "\$here/bin/\$prog" ] || usage
hwloc_plugins="$hwloc_plugins"
[ -z "\$hwloc_plugins" ] || export HWLOC_PLUGINS_PATH="\$here/\$hwloc_plugins"
if [ "\$with_mpi" = 1 ]; then
    # Open MPI's and PMIx's install directories are here; relocation variables of another
    # Open MPI or PMIx (e.g. from an environment module) would override ours.
    for v in EXEC_PREFIX BINDIR SBINDIR LIBEXECDIR DATAROOTDIR DATADIR SHAREDSTATEDIR \\
             LOCALSTATEDIR LIBDIR INCLUDEDIR INFODIR MANDIR PKGINCLUDEDIR; do
        unset OPAL_\$v PMIX_\$v
    done
    unset PMIX_INSTALL_PREFIX PMIX_PKGLIBDIR PMIX_PKGDATADIR PMIX_SYSCONFDIR
    mpi="\$here/openmpi"
    export OPAL_PREFIX="\$mpi" OPAL_BINDIR="\$mpi/bin" OPAL_PKGLIBDIR="\$mpi/lib" \\
           OPAL_PKGDATADIR="\$mpi/share" OPAL_SYSCONFDIR="\$mpi/etc"
    if [ $with_pmix = 1 ]; then
        export PMIX_PKGLIBDIR="\$mpi/lib/pmix" PMIX_PKGDATADIR="\$mpi/share" PMIX_SYSCONFDIR="\$mpi/etc"
    fi
    # orted on other nodes: this bundle's script (the bundle must be at the same path there).
    export OMPI_MCA_orte_launch_agent="\$mpi/bin/orted"
    # mpirun finds PROGRAM as the script that runs it through here.
    case ":\$PATH:" in *":\$mpi/bin:"*) ;; *) export PATH="\$mpi/bin:\$PATH" ;; esac
fi
loader="$loader"
if [ -n "\$loader" ]; then
    # The packed glibc must be started by its own dynamic loader; LD_LIBRARY_PATH stays the
    # node's, for the node's programs that this one may start (/bin/sh, ssh).
    exec "\$here/\$loader" --library-path "\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
        --argv0 "\$name" "\$here/bin/\$prog" "\$@"
fi
export LD_LIBRARY_PATH="\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
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
     "CUDA libraries: $([[ $with_cuda -eq 1 ]] && echo packed || echo left out)," \
     "Open MPI run time: $([[ $with_mpi_runtime -eq 1 ]] && echo "openmpi/ (mpirun, orted, components)" || echo none))"
echo "  unpacked: $(du -sh "$root" | cut -f1), archive: $(du -h "$out" | cut -f1)"
