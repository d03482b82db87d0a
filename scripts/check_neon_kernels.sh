#!/usr/bin/env bash
# Cross-compiles the C kernels (Sources/CFolioKernels) for arm64 and checks their NEON paths against the portable
# ones under qemu: scripts/neon_kernel_check.c prints one line per kernel with its largest error and exits non-zero
# on any mismatch. Builds with aarch64-linux-gnu-gcc -O2 and, when clang is on PATH, with
# clang --target=aarch64-linux-gnu -O3 (as SwiftPM builds the target; linked by the cross gcc), both -Wall -Werror.
# On an x86-64 host it also compiles every kernel file for the host with gcc and clang, -Wall -Werror.
#
# Usage: scripts/check_neon_kernels.sh   (from any directory; needs gcc-aarch64-linux-gnu and qemu-user)
# Exit status: 0 all match; 1 a kernel differs from its portable twin; other: a build or tool failure.
# Environment: AARCH64_CC, AARCH64_PREFIX (default aarch64-linux-gnu-), AARCH64_SYSROOT (default
# /usr/aarch64-linux-gnu), QEMU (default qemu-aarch64), CLANG (default clang; empty to skip).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/Sources/CFolioKernels"
prefix="${AARCH64_PREFIX:-aarch64-linux-gnu-}"
cross_cc="${AARCH64_CC:-${prefix}gcc}"
sysroot="${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
qemu="${QEMU:-qemu-aarch64}"
clang="${CLANG-clang}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in "$cross_cc" "${prefix}nm" "${prefix}objcopy" "$qemu"; do
  command -v "$tool" >/dev/null || { echo "check_neon_kernels: $tool not found" >&2; exit 2; }
done

warnings=(-Wall -Werror)
sources=("$src"/*.c)

# build NAME COMPILER... : objects of every kernel file, portable twins of the files whose kernels pick their own
# path (built without __aarch64__, defined symbols prefixed `portable_`), the driver; linked by the cross gcc.
build() {
  local name="$1"
  shift
  local dir="$work/$name"
  mkdir -p "$dir"
  local objects=()
  for file in "${sources[@]}"; do
    local base
    base="$(basename "$file" .c)"
    "$@" "${warnings[@]}" -I "$src/include" -c "$file" -o "$dir/$base.o"
    objects+=("$dir/$base.o")
  done
  for base in softmax linear interleaved; do
    "$@" "${warnings[@]}" -U__aarch64__ -I "$src/include" -c "$src/$base.c" -o "$dir/portable_$base.o"
    "${prefix}nm" --defined-only -g "$dir/portable_$base.o" | awk '{print $3 " portable_" $3}' >"$dir/$base.symbols"
    "${prefix}objcopy" --redefine-syms="$dir/$base.symbols" "$dir/portable_$base.o"
    objects+=("$dir/portable_$base.o")
  done
  "$@" "${warnings[@]}" -I "$src/include" -c "$root/scripts/neon_kernel_check.c" -o "$dir/check.o"
  "$cross_cc" "${objects[@]}" "$dir/check.o" -pthread -lm -o "$dir/neon_kernel_check"
}

# run NAME: the driver under qemu; its status is the script's if it fails.
run() {
  echo "== $1"
  local status=0
  "$qemu" -L "$sysroot" "$work/$1/neon_kernel_check" || status=$?
  [ "$status" -eq 0 ] || { echo "check_neon_kernels: $1 build: mismatch (status $status)"; exit "$status"; }
}

build gcc "$cross_cc" -O2
run gcc
if [ -n "$clang" ] && command -v "$clang" >/dev/null; then
  build clang "$clang" --target=aarch64-linux-gnu --sysroot="$sysroot" -O3
  run clang
else
  echo "== clang: not found, skipped"
fi

if [ "$(uname -m)" = x86_64 ]; then
  for compiler in gcc "$clang"; do
    [ -n "$compiler" ] && command -v "$compiler" >/dev/null || continue
    for file in "${sources[@]}"; do
      "$compiler" -O2 "${warnings[@]}" -I "$src/include" -c "$file" -o "$work/host.o"
    done
    echo "== x86-64 $compiler: every kernel file compiles without warnings"
  done
fi
echo "check_neon_kernels: ok"
