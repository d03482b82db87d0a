#!/usr/bin/env bash
# Folio against llama.cpp on the same machine, same shapes, same threads (issue 5); prints markdown tables.
#
# Builds llama.cpp from the PyPI llama-cpp-python source distribution (it vendors a llama.cpp with qwen35 support),
# converts each random-weight Qwen3.5 folder (scripts/make_fixtures.py --real-shapes 0.8b|2b DIR) to GGUF (F16, then
# Q8_0 and Q4_0, and the vision tower to an F16 mmproj), and runs, for each model and bits:
#   - llama-bench pp512 / tg128 (and tg128 after a 4096-token context) next to `folio bench` with the same bits;
#   - with VISION=WxH (default 1280x1792, first model only): llama-mtmd-cli on a page of that size next to
#     `folio bench --image WxH`, reporting vision-encoder time and time to first token.
#
#   scripts/bench_llamacpp.sh /tmp/q08 [/tmp/q2b]   # PYTHON=venv python with torch; THREADS=2; REPS=3; DEPTH=4096;
#                                                   # VISION=1280x1792 (VISION= to skip); WORK=/tmp/folio-llamacpp
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/bench_llamacpp.sh MODEL_FOLDER [MODEL_FOLDER...]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
threads="${THREADS:-2}"
reps="${REPS:-3}"
depth="${DEPTH:-4096}"
vision="${VISION-1280x1792}"
work="${WORK:-/tmp/folio-llamacpp}"
mkdir -p "$work"
models=()
for m in "$@"; do models+=("$(cd "$m" && pwd)"); done
cd "$work"

if ! ls llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
  "$python" -m pip install -q scikit-build-core cmake
  "$python" -m pip download --no-deps --no-binary :all: --no-build-isolation llama-cpp-python -d .
fi
[ -d src ] || { mkdir src && tar xzf llama_cpp_python-*.tar.gz -C src --strip-components=1; }
llama="$work/src/vendor/llama.cpp"
# AMX off: on a Sapphire Rapids VM ggml's AMX kernels died with SIGILL (the tile state was not granted), and Folio
# does not use AMX either; every AVX-512 extension (VNNI, BF16, VBMI) stays on through -march=native.
no_amx=""
[ "$(uname -m)" = x86_64 ] && no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
if [ ! -x build/bin/llama-bench ] || [ ! -x build/bin/llama-mtmd-cli ]; then
  PATH="$(dirname "$python"):$PATH" cmake -S "$llama" -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  PATH="$(dirname "$python"):$PATH" cmake --build build -j "$(nproc)" \
    --target llama-bench llama-quantize llama-mtmd-cli >/dev/null
fi
"$python" -m pip install -q -e "$llama/gguf-py" sentencepiece >/dev/null
(cd "$root" && swift build -c release >/dev/null)
folio="$root/.build/release/folio"

# `folio bench --json` fields as one table row.
folio_row() {
  "$python" -c 'import json, sys
r = json.load(sys.stdin)
print("| Folio %s | %.1f | %.1f | %.0f |" % (sys.argv[1], r["prefill_tokens_per_s"], r["decode_tokens_per_s"], r["peak_rss_mib"]))' "$1"
}

for model in "${models[@]}"; do
  name="$(basename "$model")"
  mkdir -p "$name"
  [ -f "$name/model-f16.gguf" ] ||
    "$python" "$llama/convert_hf_to_gguf.py" "$model" --no-mtp --outtype f16 --outfile "$name/model-f16.gguf" >/dev/null
  for q in Q8_0 Q4_0; do
    [ -f "$name/model-$q.gguf" ] || build/bin/llama-quantize "$name/model-f16.gguf" "$name/model-$q.gguf" "$q" >/dev/null
  done

  echo "## $name: llama.cpp (llama-bench, $threads threads, $reps repetitions)"
  build/bin/llama-bench -m "$name/model-Q8_0.gguf" -m "$name/model-Q4_0.gguf" -t "$threads" -r "$reps" \
    -p 512 -n 128 -o md
  for q in Q8_0 Q4_0; do  # peak memory of one pp512 + tg128 run per file
    /usr/bin/time -f "llama.cpp $q peak RSS %M KiB" build/bin/llama-bench -m "$name/model-$q.gguf" -t "$threads" \
      -r 1 -p 512 -n 128 -o md 2>&1 >/dev/null | tail -n 1
  done
  build/bin/llama-bench -m "$name/model-Q8_0.gguf" -m "$name/model-Q4_0.gguf" -t "$threads" -r 1 \
    -p 0 -n 128 -d "$depth" -o md | grep qwen35
  echo
  echo "## $name: Folio (folio bench, $threads threads)"
  echo "| engine, bits | prefill 512 tokens/s | decode 128 tokens/s | peak RSS MiB |"
  echo "|---|---|---|---|"
  for bits in 8 4; do
    "$folio" bench --model "$model" --quantize "$bits" --prompt-tokens 512 --gen-tokens 128 --threads "$threads" \
      --json | folio_row "$bits-bit"
  done
  echo
  echo "| engine, bits | prefill $depth tokens/s | decode 32 after $depth tokens/s | peak RSS MiB |"
  echo "|---|---|---|---|"
  for bits in 8 4; do
    "$folio" bench --model "$model" --quantize "$bits" --prompt-tokens "$depth" --gen-tokens 32 --threads "$threads" \
      --json | folio_row "$bits-bit"
  done
  echo
done

if [ -n "$vision" ]; then
  model="${models[0]}"
  name="$(basename "$model")"
  [ -f "$name/mmproj-f16.gguf" ] ||
    "$python" "$llama/convert_hf_to_gguf.py" "$model" --mmproj --outtype f16 --outfile "$name/mmproj-f16.gguf" >/dev/null
  width="${vision%x*}"
  height="${vision#*x}"
  "$python" -c 'import sys, numpy as np
from PIL import Image
w, h = int(sys.argv[1]), int(sys.argv[2])
Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sys.argv[3])' \
    "$width" "$height" "page-$vision.png"
  echo "## $name: vision, one ${vision} page + prompt, first token ($threads threads)"
  echo "| engine | vision encoder s | time to first token s |"
  echo "|---|---|---|"
  log="$(build/bin/llama-mtmd-cli -m "$name/model-Q4_0.gguf" --mmproj "$name/mmproj-f16.gguf" --image "page-$vision.png" \
    -p "Read this page." -n 1 -t "$threads" --temp 0 2>&1 || true)"
  "$python" -c 'import re, sys
log = sys.stdin.read()
enc = sum(float(x) for x in re.findall(r"image slice encoded in ([0-9.]+) ms", log)) / 1000
dec = sum(float(x) for x in re.findall(r"image decoded \(batch [0-9]+/[0-9]+\) in ([0-9.]+) ms", log)) / 1000
m = re.search(r"prompt eval time =\s+([0-9.]+) ms", log)
text = float(m.group(1)) / 1000 if m else 0.0
if enc == 0:
    # Newer llama.cpp logs "mtmd batch encoding done in N ms" and stamps each line M.SS.mmm.uuu; the image and
    # text tokens are decoded between that line and the last stamped line (the final text batch starting).
    stamp = lambda line: (lambda f: int(f[0]) * 60 + int(f[1]) + int(f[2]) / 1e3 + int(f[3]) / 1e6)(line.split()[0].split("."))
    lines = [l for l in log.splitlines() if re.match(r"\d+\.\d+\.\d+\.\d+ ", l)]
    m = re.search(r"mtmd batch encoding done in ([0-9.]+) ms", log)
    done = [l for l in lines if "mtmd batch encoding done" in l]
    if m and done:
        enc = float(m.group(1)) / 1000
        dec, text = stamp(lines[-1]) - stamp(done[0]), 0.0
print("| llama.cpp Q4_0 + F16 mmproj | %.1f | %.1f (image tokens %.1f + text %.1f) |" % (enc, enc + dec + text, dec, text))' <<<"$log"
  "$folio" bench --model "$model" --quantize 4 --image "$vision" --prompt-tokens 16 --gen-tokens 1 \
    --threads "$threads" --json |
    "$python" -c 'import json, sys
r = json.load(sys.stdin)
print("| Folio 4-bit | %.1f | %.1f |" % (r["vision_s"], r["ttft_s"]))'
fi
