#!/usr/bin/env bash
# Builds the CFolioImage shim with a small driver and runs truncated/damaged fixtures through it under valgrind.
# Usage: scripts/check_codec_leaks.sh   (needs valgrind, libpng-dev, libjpeg-dev)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cc -O1 -g -I"$root/Sources/CFolioImage/include" -I"$root/Sources/CFolioImage" \
  "$root/Sources/CFolioImage/png_shim.c" "$root/Sources/CFolioImage/jpeg_shim.c" "$root/scripts/codec_leak_driver.c" \
  $(pkg-config --cflags --libs libpng libjpeg) -o "$build/driver"
cd "$root/Tests/Fixtures/images"
valgrind --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99 \
  "$build/driver" png_rgb8_97x61.png png_rgba8_interlaced_97x61.png png_rgb16_97x61.png png_palette4_trns_97x61.png \
  png_gray1_interlaced_97x61.png png_graya16_97x61.png jpeg_baseline420_97x61.jpg jpeg_progressive_97x61.jpg \
  jpeg_cmyk_97x61.jpg jpeg_gray_97x61.jpg jpeg_restart_97x61.jpg
echo "valgrind: no leaks, no memory errors"
