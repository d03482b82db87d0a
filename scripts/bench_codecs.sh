#!/usr/bin/env bash
# Decode speed (ms per megapixel) for PNG and JPEG, plus preprocessing, in release mode; Pillow for comparison.
# Usage: scripts/bench_codecs.sh   (uses /work/venv/bin/python with Pillow to make the test pictures)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-/work/venv/bin/python}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$python" - "$dir" <<'PY'
import sys, time, numpy as np
from PIL import Image, ImageDraw
out = sys.argv[1]
w, h = 4000, 3000  # a 12 MP photo
y, x = np.mgrid[0:h, 0:w].astype(np.float32)
rgb = np.stack([x * 255 / w, y * 255 / h, 127 + 120 * np.sin((x + y) / 50)], -1)
rgb += np.random.default_rng(0).normal(0, 4, rgb.shape).astype(np.float32)  # sensor-like noise
im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
ImageDraw.Draw(im).text((100, 100), "Folio benchmark", fill=(255, 255, 255))
im.save(f"{out}/photo_rgb.png", compress_level=6)
im.putalpha(200)
im.save(f"{out}/photo_rgba.png", compress_level=6)
im = im.convert("RGB")
im.save(f"{out}/photo_baseline.jpg", quality=90)
im.save(f"{out}/photo_progressive.jpg", quality=90, progressive=True)
for name in ["photo_rgb.png", "photo_rgba.png", "photo_baseline.jpg", "photo_progressive.jpg"]:
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        with Image.open(f"{out}/{name}") as img:
            img.convert("RGB").load()
        best = min(best, time.perf_counter() - t)
    print(f"[pillow] decode {name}: best {best * 1000:.1f} ms, {best * 1000 / 12:.1f} ms/MP")
PY
cd "$root"
FOLIO_BENCH_DIR="$dir" swift test -c release --filter CodecBenchmark 2>&1 | grep '\[bench\]'
