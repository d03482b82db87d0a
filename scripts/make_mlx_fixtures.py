#!/usr/bin/env python3
"""MLX-format fixtures for Folio's MLX loader (issue 5).

Converts Tests/Fixtures/models/tiny-dense into mlx-community-style quantized folders with mlx-lm itself (the way
mlx-community folders are made: `language_model.model.*` names, norm weights with +1 baked in, conv1d as [C, K, 1],
uint32-packed affine codes with scales and biases, `quantization` in config.json), then records what mlx-lm computes
for them: greedy decoding with per-step logits, so the Swift loader is checked against MLX's own runtime.

The mixture-of-experts folders come from tiny-moe-fused (tiny-moe's weights with fused experts.gate_up_proj /
experts.down_proj, as published checkpoints store them): mlx-lm's qwen3_5_moe sanitize only stacks fused experts
and refuses tiny-moe's per-expert tensors ("parameters not in model"). It writes them as mlx-community's 35B-A3B
folders are: stacked `mlp.switch_mlp.{gate,up,down}_proj` `[E, out, in]`, the router `mlp.gate` and
`mlp.shared_expert_gate` at 8 bits (its quant predicate). mlx-lm leaves a layer unquantized when its input width is
not a multiple of the group size, so with groups of 64 tiny-moe's down projections (32 and 48 inputs) stay float16;
the gs32 folder quantizes the experts' down projection too (the shared expert's 48 still stays float16).
tiny-moe is stored in float16, which mlx-lm would also compute in (0.33 max |logit| away from fp32 on the gs32
folder, and MLX's CPU gather_mm for the unquantized switch_mlp takes float32 only); its reference runs with every
parameter widened to float32 (exact), so it is the fp32 arithmetic on the stored values, as for the dense folders.

    /work/venv/bin/pip install "mlx[cpu]==0.32.4" mlx-lm
    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/make_mlx_fixtures.py --out Tests/Fixtures [--only moe]

writes models/tiny-dense-mlx-{4,6,8}bit/, models/tiny-moe-mlx-4bit/, models/tiny-moe-mlx-gs32-4bit/ and
reference/<name>.{json,safetensors} for each.
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
from mlx.utils import tree_map
from mlx_lm.models.cache import make_prompt_cache
from safetensors.numpy import save_file

PROMPT_IDS = [39, 350, 75, 78, 11, 785, 581, 0, 362, 78]  # ordinary text ids of the tiny tokenizer
STEPS = 8


# (name, source folder, bits, group size)
DENSE = [(f"tiny-dense-mlx-{bits}bit", "tiny-dense", bits, 64) for bits in (4, 6, 8)]
MOE = [("tiny-moe-mlx-4bit", "tiny-moe-fused", 4, 64), ("tiny-moe-mlx-gs32-4bit", "tiny-moe-fused", 4, 32)]


def convert(source: Path, target: Path, bits: int, group_size: int = 64) -> None:
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", str(source), "-q", "--q-bits", str(bits),
         "--q-group-size", str(group_size), "--mlx-path", str(target)],
        check=True, capture_output=True)
    (target / "README.md").unlink(missing_ok=True)


def widen_to_float32(model) -> None:
    """Every float16/bfloat16 parameter (norms, scales, biases, unquantized layers) as float32; codes stay uint32."""
    narrow = (mx.float16, mx.bfloat16)
    model.update(tree_map(lambda p: p.astype(mx.float32) if p.dtype in narrow else p, model.parameters()))


def greedy(folder: Path) -> tuple[list[int], np.ndarray]:
    model, _ = load(str(folder))
    widen_to_float32(model)
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
    parser.add_argument("--only", choices=["dense", "moe"], help="convert only these folders")
    args = parser.parse_args()
    folders = {"dense": DENSE, "moe": MOE}.get(args.only, DENSE + MOE)
    for name, source, bits, group_size in folders:
        folder = args.out / "models" / name
        convert(args.out / "models" / source, folder, bits, group_size)
        tokens, logits = greedy(folder)
        (args.out / "reference" / f"{name}.json").write_text(json.dumps(
            {"model": name, "source": source, "bits": bits, "group_size": group_size,
             "runtime": f"mlx {mx.__version__}",
             "cases": [{"name": "short", "prompt_ids": PROMPT_IDS, "greedy_ids": tokens}]}, indent=1))
        save_file({"short.logits": logits}, str(args.out / "reference" / f"{name}.safetensors"))
        print(name, tokens)


if __name__ == "__main__":
    main()
