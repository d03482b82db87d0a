#!/usr/bin/env bash
# Folio against llama.cpp on the same machine, same shapes, same threads (issue 5).
#
# Builds llama.cpp from the PyPI llama-cpp-python source distribution (it vendors a llama.cpp with qwen35 support),
# converts a random-weight Qwen3.5 folder (scripts/make_fixtures.py --real-shapes 0.8b DIR) to GGUF (F16, then
# Q8_0 and Q4_0), runs llama-bench, runs `folio bench` with the matching bits, and prints one markdown table.
#
#   scripts/bench_llamacpp.sh /tmp/q08            # PYTHON=venv python with torch; THREADS=2; WORK=/tmp/folio-llamacpp
set -euo pipefail
model="$(cd "${1:?usage: scripts/bench_llamacpp.sh MODEL_FOLDER}" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
threads="${THREADS:-2}"
work="${WORK:-/tmp/folio-llamacpp}"
mkdir -p "$work"
cd "$work"

if ! ls llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
  "$python" -m pip install -q scikit-build-core cmake
  "$python" -m pip download --no-deps --no-binary :all: --no-build-isolation llama-cpp-python -d .
fi
[ -d src ] || { mkdir src && tar xzf llama_cpp_python-*.tar.gz -C src --strip-components=1; }
llama="$work/src/vendor/llama.cpp"
if [ ! -x build/bin/llama-bench ]; then
  PATH="$(dirname "$python"):$PATH" cmake -S "$llama" -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DBUILD_SHARED_LIBS=OFF >/dev/null
  PATH="$(dirname "$python"):$PATH" cmake --build build -j "$(nproc)" --target llama-bench llama-quantize >/dev/null
fi
"$python" -m pip install -q -e "$llama/gguf-py" sentencepiece >/dev/null
[ -f model-f16.gguf ] || "$python" "$llama/convert_hf_to_gguf.py" "$model" --no-mtp --outtype f16 --outfile model-f16.gguf
for q in Q8_0 Q4_0; do
  [ -f "model-$q.gguf" ] || build/bin/llama-quantize model-f16.gguf "model-$q.gguf" "$q" >/dev/null
done

echo "## llama.cpp (llama-bench, $threads threads)"
build/bin/llama-bench -m model-Q8_0.gguf -m model-Q4_0.gguf -t "$threads" -p 512 -n 128 -o md

echo
echo "## Folio (folio bench, $threads threads)"
(cd "$root" && swift build -c release >/dev/null)
echo "| bits | prefill 512 tokens/s | decode 128 tokens/s | peak RSS MiB |"
echo "|---|---|---|---|"
for bits in 8 4; do
  "$root/.build/release/folio" bench --model "$model" --quantize "$bits" --prompt-tokens 512 --gen-tokens 128 \
    --threads "$threads" --json |
    "$python" -c 'import json, sys; r = json.load(sys.stdin); print("| %s | %.1f | %.1f | %.0f |" % (sys.argv[1], r["prefill_tokens_per_s"], r["decode_tokens_per_s"], r["peak_rss_mib"]))' "$bits"
done
