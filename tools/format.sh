#!/usr/bin/env bash
# Formats every C++ and CUDA source of the project with .clang-format (clang-format-19, from
# tools/install-deps.sh). --check changes nothing and fails, listing the files, when one is
# not formatted (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format-19}
# The source folders, not build/ (no git needed: CI's fresh root has a copy, not a clone).
mapfile -t files < <(find lib drivers tests tools \( -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' \) | sort)
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f"); done
  [ ${#bad[@]} -eq 0 ] || { echo "format.sh: not formatted (run tools/format.sh): ${bad[*]}" >&2; exit 1; }
  echo "format.sh: ${#files[@]} files formatted"
else
  "$fmt" -i "${files[@]}"
fi
