#!/usr/bin/env python3
"""MLX-format fixtures for Folio's MLX loader (issue 5).

Converts Tests/Fixtures/models/tiny-dense into mlx-community-style quantized folders with mlx-lm itself (the way
mlx-community folders are made: `language_model.model.*` names, norm weights with +1 baked in, conv1d as [C, K, 1],
uint32-packed affine codes with scales and biases, `quantization` in config.json), then records what mlx-lm computes
for them: greedy decoding with per-step logits, so the Swift loader is checked against MLX's own runtime.

    /work/venv/bin/pip install "mlx[cpu]==0.32.4" mlx-lm
    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/make_mlx_fixtures.py --out Tests/Fixtures

writes models/tiny-dense-mlx-{4,8}bit/ and reference/tiny-dense-mlx-{4,8}bit.{json,safetensors}.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx_lm import load
from mlx_lm.models.cache import make_prompt_cache
from safetensors.numpy import save_file

PROMPT_IDS = [39, 350, 75, 78, 11, 785, 581, 0, 362, 78]  # ordinary text ids of the tiny tokenizer
STEPS = 8


def convert(source: Path, target: Path, bits: int) -> None:
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", str(source), "-q", "--q-bits", str(bits),
         "--q-group-size", "64", "--mlx-path", str(target)],
        check=True, capture_output=True)
    (target / "README.md").unlink(missing_ok=True)


def greedy(folder: Path) -> tuple[list[int], np.ndarray]:
    model, _ = load(str(folder))
    cache = make_prompt_cache(model)
    rows = []
    tokens = []
    logits = model(mx.array([PROMPT_IDS]), cache=cache)
    for _ in range(STEPS):
        last = logits[0, -1].astype(mx.float32)
        mx.eval(last)
        row = np.array(last)
        rows.append(row)
        token = int(np.argmax(row))
        tokens.append(token)
        logits = model(mx.array([[token]]), cache=cache)
    return tokens, np.stack(rows).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("Tests/Fixtures"))
    args = parser.parse_args()
    source = args.out / "models" / "tiny-dense"
    for bits in (4, 6, 8):
        name = f"tiny-dense-mlx-{bits}bit"
        folder = args.out / "models" / name
        convert(source, folder, bits)
        tokens, logits = greedy(folder)
        (args.out / "reference" / f"{name}.json").write_text(json.dumps(
            {"model": name, "source": "tiny-dense", "bits": bits, "group_size": 64, "runtime": f"mlx {mx.__version__}",
             "cases": [{"name": "short", "prompt_ids": PROMPT_IDS, "greedy_ids": tokens}]}, indent=1))
        save_file({"short.logits": logits}, str(args.out / "reference" / f"{name}.safetensors"))
        print(name, tokens)


if __name__ == "__main__":
    main()
