#!/usr/bin/env bash
# Unpacks the newest CMake in Debian 12's archive (bookworm-backports, 3.31 today) into DIR,
# without touching the machine's apt configuration or installed packages, so the build can be
# configured with it as well as with Debian's own 3.25 (clusters ship a range of versions):
#   tools/cmake-newer.sh DIR && DIR/usr/bin/cmake --preset gpu -B build/gpu-newer
# It reads Debian's archive through a private apt state under DIR (env OMPML_DEBIAN_MIRROR).
set -euo pipefail
dir=${1:?usage: cmake-newer.sh DIR}
mirror=${OMPML_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$dir/apt/lists/partial" "$dir/apt/archives/partial" "$dir/debs"
dir=$(cd "$dir" && pwd)
echo "deb $mirror bookworm-backports main" >"$dir/apt/sources.list"
apt_private=(-o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts=-
             -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache::Archives="$dir/apt/archives"
             -o Dir::State::Status="$dir/apt/status" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
: >"$dir/apt/status"
apt-get -qq "${apt_private[@]}" update
(cd "$dir/debs" && apt-get -qq "${apt_private[@]}" download cmake cmake-data)
for deb in "$dir"/debs/cmake*.deb; do dpkg-deb -x "$deb" "$dir"; done
"$dir/usr/bin/cmake" --version | head -n 1
