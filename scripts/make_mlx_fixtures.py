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

The vision-language folder comes from mlx-vlm, the converter mlx-community's Qwen3.5 folders are made with (mlx-lm
drops the vision tower): `vision_tower.*` kept unquantized in the stored dtype (its `skip_multimodal_module`), the
Conv3d patch embedding channels-last `[O, T, P, P, C]`, the language model quantized as mlx-lm does, and the
tokenizer, processor and generation settings re-saved by transformers (`processor_config.json`, generation keys
merged into config.json). Its reference is what mlx-vlm computes for the `image_one` case of
reference/tiny-dense-vision.json: mlx-vlm's own preprocessing of that picture (pixel values stored), its vision
tower's features, and greedy decoding through its `generate_step` with per-step logits (fp32, widened as above).

    /work/venv/bin/pip install "mlx[cpu]==0.32.4" mlx-lm mlx-vlm==0.7.10
    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/make_mlx_fixtures.py --out Tests/Fixtures [--only dense|moe|vlm]

writes models/tiny-dense-mlx-{4,6,8}bit/, models/tiny-moe-mlx-4bit/, models/tiny-moe-mlx-gs32-4bit/,
models/tiny-dense-mlxvlm-4bit/ and reference/<name>.{json,safetensors} for each.
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
VLM = [("tiny-dense-mlxvlm-4bit", "tiny-dense", 4, 64)]
VLM_CASE = "image_one"  # a case of reference/tiny-dense-vision.json: one opaque picture (mlx-vlm drops alpha, below)


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


def convert_vlm(source: Path, target: Path, bits: int, group_size: int) -> None:
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "mlx_vlm", "convert", "--hf-path", str(source), "-q", "--q-bits", str(bits),
         "--q-group-size", str(group_size), "--mlx-path", str(target)],
        check=True, capture_output=True)
    (target / "README.md").unlink(missing_ok=True)


def vlm_reference(out: Path, name: str, source: str, bits: int, group_size: int) -> None:
    """Records mlx-vlm's preprocessing, vision features and greedy decoding for VLM_CASE on models/<name>."""
    import mlx_vlm
    from mlx_vlm.generate.ar import generate_step
    from mlx_vlm.utils import prepare_inputs
    from safetensors.numpy import load_file

    folder = out / "models" / name
    transformers_reference = json.loads((out / "reference" / f"{source}-vision.json").read_text())
    transformers_tensors = load_file(str(out / "reference" / f"{source}-vision.safetensors"))
    case = next(c for c in transformers_reference["cases"] if c["name"] == VLM_CASE)
    (image,) = case["images"]
    model, processor = mlx_vlm.load(str(folder))
    widen_to_float32(model)

    # mlx-vlm's own image processor (a numpy port of Qwen2-VL's) against transformers' pixel values, per picture:
    # x/255 then (x - 0.5)/0.5 instead of one fused step (1 ulp), and PIL's convert("RGB") drops an alpha channel
    # where transformers composites onto white, so alpha_45x70.png differs.
    preprocessing = {}
    for entry in transformers_reference["images"]:
        ours = processor.image_processor([str(out / "images-model" / entry["file"])])
        theirs = transformers_tensors[entry["pixel_values_key"]]
        assert ours["image_grid_thw"].tolist() == [entry["grid_thw"]], entry["file"]
        preprocessing[entry["file"]] = float(np.abs(ours["pixel_values"] - theirs).max())

    inputs = prepare_inputs(processor, images=[str(out / "images-model" / image)], prompts=[case["prompt_text"]])
    prompt_ids = np.array(inputs["input_ids"])[0].tolist()
    assert prompt_ids == case["prompt_ids"], "mlx-vlm's prompt ids differ from transformers'"
    pixel_values, grid = inputs["pixel_values"].astype(mx.float32), inputs["image_grid_thw"]
    features, _ = model.vision_tower(pixel_values, grid)
    features = np.array(features.astype(mx.float32))
    stem = Path(image).stem
    features_vs_transformers = float(np.abs(features - transformers_tensors[f"{stem}.features"]).max())

    # Greedy decoding as `mlx_vlm generate` runs it; a pass-through logits processor sees every step's raw logits.
    rows = []

    def record(_tokens, logits):
        rows.append(np.array(logits[0].astype(mx.float32)))
        return logits

    steps = len(case["greedy_ids"])
    tokens = [token for token, _ in generate_step(
        inputs["input_ids"], model, pixel_values, inputs["attention_mask"], temperature=0.0, max_tokens=steps,
        logits_processors=[record], image_grid_thw=grid)]
    logits = np.stack(rows[:steps]).astype(np.float32)
    assert tokens == [int(np.argmax(row)) for row in logits]

    (out / "reference" / f"{name}.json").write_text(json.dumps(
        {"model": name, "source": source, "bits": bits, "group_size": group_size,
         "converter": f"mlx-vlm {mlx_vlm.__version__}", "runtime": f"mlx {mx.__version__}",
         "notes": "mlx-vlm's own preprocessing of `image` (pixel values stored as '<image stem>.pixel_values'), its "
                  "vision tower's output ('<image stem>.features' [tokens, out_hidden_size]) and greedy decoding "
                  "with per-step logits ('<case>.logits' [steps, vocab_size]) through mlx_vlm's generate_step, "
                  "every float parameter widened to float32. prompt_ids are transformers' for the same case "
                  "(asserted identical). preprocessing_max_abs_diff: mlx-vlm's pixel values against "
                  "transformers' per picture (it drops alpha instead of compositing onto white). "
                  "features_max_abs_diff_vs_transformers: this vision tower (unquantized) against "
                  "tiny-dense-vision's features for the same picture.",
         "preprocessing_max_abs_diff": preprocessing,
         "features_max_abs_diff_vs_transformers": features_vs_transformers,
         "cases": [{"name": case["name"], "image": image, "grid_thw": grid.tolist()[0], "prompt_ids": prompt_ids,
                    "greedy_ids": tokens}]}, indent=1))
    save_file({f"{stem}.pixel_values": np.array(pixel_values), f"{stem}.features": features,
               f"{case['name']}.logits": logits}, str(out / "reference" / f"{name}.safetensors"))
    print(name, tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("Tests/Fixtures"))
    parser.add_argument("--only", choices=["dense", "moe", "vlm"], help="convert only these folders")
    args = parser.parse_args()
    folders = {"dense": DENSE, "moe": MOE, "vlm": []}.get(args.only, DENSE + MOE)
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
    if args.only in (None, "vlm"):
        for name, source, bits, group_size in VLM:
            convert_vlm(args.out / "models" / source, args.out / "models" / name, bits, group_size)
            vlm_reference(args.out, name, source, bits, group_size)


if __name__ == "__main__":
    main()
