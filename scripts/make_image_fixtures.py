#!/usr/bin/env python3
"""Image fixtures for FolioCodecs (issue 3): pictures, their Pillow decodes and transformers' preprocessing.

Run with the project venv (transformers 5.24, numpy, pillow; no torchvision, so transformers' PIL backend
`Qwen2VLImageProcessorPil` is the reference, and it is used explicitly):

    /work/venv/bin/python scripts/make_image_fixtures.py [--out Tests/Fixtures/images]

Everything is deterministic. For each image the manifest records:
  * the reference decode: Pillow `Image.open` -> `ImageOps.exif_transpose` -> transformers `convert_to_rgb`
    (alpha onto white), as a CRC-32 of the RGB bytes (and, for JPEGs, the pixels as a lossless PNG, because
    libjpeg builds may differ by a level or so);
  * for each processor configuration: grid_thw, the resized 8-bit image Pillow produced (lossless PNG), the
    CRC-32 of pixel_values (float32 little-endian) and, for a few, sample rows of pixel_values.
PNGs are written by a small encoder here so every colour type / bit depth / interlace combination is covered.
"""

import argparse
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, ImageOps

import transformers
from transformers.image_transforms import convert_to_rgb
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

CONFIGS = {
    # The real Qwen3.5 preprocessor_config.json (qwen35.md section 4.1).
    "qwen35": {
        "size": {"longest_edge": 16777216, "shortest_edge": 65536},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    },
    # Small pixel budget so that smart_resize scales the larger pictures down (antialiased).
    "small": {
        "size": {"longest_edge": 65536, "shortest_edge": 4096},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    },
    # Qwen2-VL style: patch 14, legacy min/max_pixels keys, CLIP mean/std (per-channel normalisation).
    "clip14": {
        "min_pixels": 3136, "max_pixels": 100352,
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    },
}


# ---------------------------------------------------------------------------------------------- pictures

def picture(width, height, seed):
    """Gradients, shapes and drawn text, RGB uint8 (height, width, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = x * 255.0 / max(width - 1, 1)
    g = y * 255.0 / max(height - 1, 1)
    b = 127.5 + 127.5 * np.sin((x + 2 * y) / (7.0 + seed))
    base = np.stack([r, g, b], -1)
    if width * height <= 20000:  # a little texture on the small pictures (keeps the big fixtures compressible)
        base += rng.normal(0, 2, base.shape)
    image = Image.fromarray(np.clip(np.round(base), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    s = min(width, height)
    draw.ellipse([width * 0.1, height * 0.15, width * 0.1 + s * 0.5, height * 0.15 + s * 0.5], fill=(250, 40, 30))
    draw.rectangle([width * 0.55, height * 0.5, width * 0.9, height * 0.85], fill=(20, 30, 200), outline=(255, 255, 0))
    draw.line([0, height - 1, width - 1, 0], fill=(0, 0, 0), width=max(1, s // 40))
    font = ImageFont.load_default(size=max(8, s // 8))
    draw.text((2, 2), f"Folio {width}x{height}", fill=(255, 255, 255), font=font)
    return np.array(image)


def alpha_mask(width, height):
    """Alpha that covers 0 and 255 and everything between."""
    y, x = np.mgrid[0:height, 0:width]
    a = (x * 255 // max(width - 1, 1)) ^ (y * 37 % 256)
    a[: height // 4] = 255
    a[-max(1, height // 8):] = 0
    return a.astype(np.uint8)


def smooth_alpha(width, height):
    """A vertical alpha ramp from 255 to 0 (compresses well)."""
    ramp = np.linspace(255, 0, height).round().astype(np.uint8)
    return np.repeat(ramp[:, None], width, 1)


# ---------------------------------------------------------------------------------------------- PNG writer

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_row(samples, bit_depth):
    samples = np.asarray(samples).reshape(-1)
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    pad = (-len(samples)) % per_byte
    s = np.concatenate([samples.astype(np.uint8), np.zeros(pad, np.uint8)]).reshape(-1, per_byte)
    out = np.zeros(len(s), np.uint8)
    for i in range(per_byte):
        out |= (s[:, i] << (8 - bit_depth * (i + 1))).astype(np.uint8)
    return out.tobytes()


def _best_filter(line, previous, bpp):
    """All five PNG filters; keep the one with the smallest sum of absolute residuals (libpng's heuristic)."""
    up = previous if previous is not None else np.zeros_like(line)
    left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = [line, line - left, line - up, line - (left + up) // 2, line - paeth]
    candidates = [c % 256 for c in candidates]
    scores = [np.sum(np.where(c < 128, c, 256 - c)) for c in candidates]
    best = int(np.argmin(scores))
    return best, candidates[best]


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(samples, color_type, bit_depth, palette=None, trns=None, interlace=False, exif=None):
    """samples: (h, w) or (h, w, channels) integer array in the bit depth's range."""
    samples = np.asarray(samples)
    height, width = samples.shape[:2]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    bpp = max(1, channels * bit_depth // 8)  # filter byte distance
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        previous = None
        for row in sub:
            line = np.frombuffer(_pack_row(row, bit_depth), np.uint8).astype(np.int32)
            ftype, filtered = _best_filter(line, previous, bpp)
            raw += bytes([ftype]) + filtered.astype(np.uint8).tobytes()
            previous = line
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    if exif is not None:
        out += _chunk(b"eXIf", exif)
    data = zlib.compress(bytes(raw), 9)
    for i in range(0, len(data), 8192):  # several IDAT chunks, as real encoders write
        out += _chunk(b"IDAT", data[i:i + 8192])
    out += _chunk(b"IEND", b"")
    return out


def tiff_orientation(value, big_endian):
    """A minimal TIFF structure with IFD0 holding Orientation (0x0112, SHORT) and one other tag before it."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    entries = struct.pack(e + "HHI", 0x010F, 2, 4) + b"Fol\x00"  # Make = "Fol"
    entries += struct.pack(e + "HHIH", 0x0112, 3, 1, value) + b"\x00\x00"
    return head + struct.pack(e + "H", 2) + entries + struct.pack(e + "I", 0)


# ---------------------------------------------------------------------------------------------- cases

def png_cases():
    cases = []
    w, h = 97, 61
    rgb = picture(w, h, 1)
    alpha = alpha_mask(w, h)
    gray = np.array(Image.fromarray(rgb).convert("L"))
    cases.append(("png_rgb8_97x61", png_bytes(rgb, 2, 8), "RGB 8-bit"))
    cases.append(("png_rgba8_97x61", png_bytes(np.dstack([rgb, alpha]), 6, 8), "RGBA 8-bit"))
    cases.append(("png_gray8_97x61", png_bytes(gray, 0, 8), "gray 8-bit"))
    cases.append(("png_graya8_97x61", png_bytes(np.dstack([gray, alpha]), 4, 8), "gray+alpha 8-bit"))
    for depth in (1, 2, 4):
        cases.append((f"png_gray{depth}_97x61", png_bytes(gray >> (8 - depth), 0, depth), f"gray {depth}-bit"))
    # 16-bit: distinct low bytes so that truncation vs rounding would show.
    rgb16 = rgb.astype(np.uint16) * 257 + np.random.default_rng(2).integers(0, 256, rgb.shape).astype(np.uint16)
    rgb16 = np.minimum(rgb16, 65535)
    a16 = alpha.astype(np.uint16) * 257
    g16 = gray.astype(np.uint16) * 256 + 200
    cases.append(("png_rgb16_97x61", png_bytes(rgb16, 2, 16), "RGB 16-bit"))
    cases.append(("png_rgba16_97x61", png_bytes(np.dstack([rgb16, a16]), 6, 16), "RGBA 16-bit"))
    cases.append(("png_graya16_97x61", png_bytes(np.dstack([g16, a16]), 4, 16), "gray+alpha 16-bit"))
    cases.append(("png_gray16_97x61", png_bytes(g16, 0, 16), "gray 16-bit (Pillow clips; Folio keeps the high byte)"))
    # Palettes (with and without tRNS), 8-bit and low depth.
    pal_img = Image.fromarray(rgb).quantize(colors=200, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    idx = np.array(pal_img)
    pal = np.array(pal_img.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
    pal = np.vstack([pal, np.zeros((256 - len(pal), 3), np.uint8)])
    trns = bytes((i * 53) % 256 if i % 3 else 255 for i in range(120))
    cases.append(("png_palette8_97x61", png_bytes(idx, 3, 8, palette=pal), "palette 8-bit"))
    cases.append(("png_palette8_trns_97x61", png_bytes(idx, 3, 8, palette=pal, trns=trns), "palette 8-bit + tRNS"))
    for depth in (1, 2, 4):
        n = 1 << depth
        small = Image.fromarray(rgb).quantize(colors=n, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        sp = np.array(small.getpalette()[: 3 * n], np.uint8).reshape(-1, 3)
        sidx = np.minimum(np.array(small), n - 1)
        t = bytes([0, 128] if depth == 1 else [255, 0, 90])
        cases.append((f"png_palette{depth}_trns_97x61", png_bytes(sidx, 3, depth, palette=sp, trns=t),
                      f"palette {depth}-bit + tRNS"))
    # Single-colour transparency for gray and RGB (tRNS without a palette).
    g_key = int(gray[h // 2, w // 2])
    cases.append(("png_gray8_trns_97x61", png_bytes(gray, 0, 8, trns=struct.pack(">H", g_key)), "gray 8-bit + tRNS"))
    key = rgb[h // 2, w // 2]
    cases.append(("png_rgb8_trns_97x61", png_bytes(rgb, 2, 8, trns=struct.pack(">HHH", *map(int, key))),
                  "RGB 8-bit + tRNS"))
    # Interlaced.
    cases.append(("png_rgb8_interlaced_97x61", png_bytes(rgb, 2, 8, interlace=True), "RGB 8-bit Adam7"))
    cases.append(("png_rgba8_interlaced_97x61", png_bytes(np.dstack([rgb, alpha]), 6, 8, interlace=True),
                  "RGBA 8-bit Adam7"))
    cases.append(("png_palette4_interlaced_97x61", png_bytes(sidx, 3, 4, palette=sp, interlace=True),
                  "palette 4-bit Adam7"))
    cases.append(("png_gray1_interlaced_97x61", png_bytes(gray >> 7, 0, 1, interlace=True), "gray 1-bit Adam7"))
    cases.append(("png_rgb16_interlaced_97x61", png_bytes(rgb16, 2, 16, interlace=True), "RGB 16-bit Adam7"))
    # Sizes: exact multiple of 32 (no resize), tall, tiny (smart_resize scales up).
    cases.append(("png_rgb8_640x480", png_bytes(picture(640, 480, 3), 2, 8), "RGB 8-bit, no resize"))
    cases.append(("png_rgba8_300x1200", png_bytes(np.dstack([picture(300, 1200, 4), smooth_alpha(300, 1200)]), 6, 8),
                  "RGBA 8-bit tall"))
    cases.append(("png_rgb8_21x13", png_bytes(picture(21, 13, 5), 2, 8), "RGB 8-bit tiny"))
    # EXIF orientation in a PNG eXIf chunk (Pillow's exif_transpose honours it too).
    cases.append(("png_rgb8_exif6_97x61", png_bytes(rgb, 2, 8, exif=tiff_orientation(6, True)), "RGB + eXIf 6"))
    return cases


def jpeg_bytes(image, exif=None, **options):
    buf = io.BytesIO()
    if exif is not None:
        options["exif"] = exif
    image.save(buf, "JPEG", **options)
    return buf.getvalue()


def jpeg_cases():
    cases = []
    img = Image.fromarray(picture(97, 61, 11))
    big = Image.fromarray(picture(640, 480, 12))
    cases.append(("jpeg_baseline420_640x480", jpeg_bytes(big, quality=90), "baseline 4:2:0"))
    cases.append(("jpeg_baseline420_97x61", jpeg_bytes(img, quality=90), "baseline 4:2:0 odd size"))
    cases.append(("jpeg_baseline422_97x61", jpeg_bytes(img, quality=90, subsampling="4:2:2"), "baseline 4:2:2"))
    cases.append(("jpeg_baseline444_97x61", jpeg_bytes(img, quality=95, subsampling="4:4:4"), "baseline 4:4:4"))
    cases.append(("jpeg_progressive_97x61", jpeg_bytes(img, quality=90, progressive=True), "progressive 4:2:0"))
    cases.append(("jpeg_progressive_300x1200",
                  jpeg_bytes(Image.fromarray(picture(300, 1200, 13)), quality=85, progressive=True), "progressive tall"))
    cases.append(("jpeg_gray_97x61", jpeg_bytes(img.convert("L"), quality=90), "grayscale"))
    cases.append(("jpeg_cmyk_97x61", jpeg_bytes(img.convert("CMYK"), quality=95), "Adobe CMYK (inverted)"))
    cases.append(("jpeg_restart_97x61", jpeg_bytes(img, quality=90, restart_marker_blocks=2), "restart markers"))
    cases.append(("jpeg_baseline420_21x13", jpeg_bytes(Image.fromarray(picture(21, 13, 14)), quality=92), "tiny"))
    for orientation in range(1, 9):
        big_endian = orientation % 2 == 0
        exif = b"Exif\x00\x00" + tiff_orientation(orientation, big_endian)
        cases.append((f"jpeg_exif{orientation}_97x61", jpeg_bytes(img, exif=exif, quality=90),
                      f"EXIF orientation {orientation} ({'MM' if big_endian else 'II'})"))
    return cases


# ---------------------------------------------------------------------------------------------- reference

def reference_rgb(path):
    with Image.open(path) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        return upright, convert_to_rgb(upright, return_numpy=True)


def crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def f32_list(row):
    return [float(repr_f) for repr_f in (str(v) for v in row.astype(np.float32))]


def process(name, upright, rgb, config_name, out_dir, sample, keep_resized):
    config = dict(CONFIGS[config_name])
    processor = Qwen2VLImageProcessorPil(**config)
    result = processor(images=upright, return_tensors="np")
    pixel_values = np.asarray(result["pixel_values"], dtype=np.float32)
    grid = [int(v) for v in result["image_grid_thw"][0]]
    patch = config["patch_size"]
    rh, rw = grid[1] * patch, grid[2] * patch
    # The resized 8-bit image exactly as the processor makes it (np_resize -> PIL resize BICUBIC).
    resized = Image.fromarray(rgb, "RGB")
    if (rw, rh) != resized.size:
        resized = resized.resize((rw, rh), resample=Image.Resampling.BICUBIC)
    resized = np.array(resized)
    # Check that the stored resized image determines pixel_values exactly (rescale, normalise, patchify).
    mean = np.array(config["image_mean"], np.float32)
    std = np.array(config["image_std"], np.float32)
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - mean) / std).transpose(2, 0, 1)
    m, t = config["merge_size"], config["temporal_patch_size"]
    gh, gw = grid[1], grid[2]
    p = x.reshape(3, gh // m, m, patch, gw // m, m, patch).transpose(1, 4, 2, 5, 0, 3, 6)
    p = np.broadcast_to(p[:, :, :, :, :, None], (*p.shape[:5], t, patch, patch)).reshape(gh * gw, -1)
    assert np.array_equal(p, pixel_values), f"{name}/{config_name}: recomputed pixel_values differ"
    entry = {
        "config": config_name,
        "grid_thw": grid,
        "resized_height": rh,
        "resized_width": rw,
        "pixel_values_shape": list(pixel_values.shape),
        "pixel_values_crc32": crc(pixel_values.astype("<f4").tobytes()),
        "resized_crc32": crc(resized.tobytes()),
    }
    if keep_resized and (rh, rw) != rgb.shape[:2]:
        file = f"{name}.{config_name}.resized.png"
        Image.fromarray(resized).save(out_dir / file, optimize=True)
        entry["resized_png"] = file
    if sample:
        n = pixel_values.shape[0]
        entry["sample_rows"] = {str(i): f32_list(pixel_values[i]) for i in (0, n - 1)}
    return entry


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "Tests/Fixtures/images"))
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*"):
        old.unlink()

    extra_configs = {"png_rgb8_640x480": ["small", "clip14"], "png_rgba8_300x1200": ["small"],
                     "jpeg_baseline420_640x480": ["small"], "png_rgb8_97x61": ["clip14"],
                     "jpeg_progressive_300x1200": ["small", "clip14"], "png_rgb8_21x13": ["small"]}
    # Sample rows of pixel_values and the resized 8-bit reference image are stored for these (others: CRCs).
    sampled = {("png_rgb8_97x61", "qwen35"), ("png_rgb8_640x480", "small"), ("png_rgb8_97x61", "clip14"),
               ("png_rgba8_300x1200", "small"), ("jpeg_baseline420_640x480", "small")}
    images = []
    for kind, cases in (("png", png_cases()), ("jpeg", jpeg_cases())):
        for name, data, description in cases:
            file = f"{name}.{'png' if kind == 'png' else 'jpg'}"
            (out_dir / file).write_bytes(data)
            upright, rgb = reference_rgb(out_dir / file)
            with Image.open(out_dir / file) as stored:
                stored_w, stored_h = stored.size
                pil_mode = stored.mode
            entry = {
                "name": name, "file": file, "format": kind, "description": description, "pil_mode": pil_mode,
                "stored_width": stored_w, "stored_height": stored_h,
                "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "decoded_crc32": crc(np.ascontiguousarray(rgb).tobytes()),
            }
            if name.startswith("png_gray16"):
                # Pillow converts I;16 to RGB by clipping at 255 (Convert.c I16_RGB), which whitens almost every
                # pixel. Folio keeps the high byte instead (libpng strip_16, the same rule Pillow applies to
                # 16-bit RGB/RGBA/LA); record that expectation and Pillow's for the record.
                samples = np.array(Image.open(out_dir / file)).astype(np.uint16)
                high = np.repeat((samples >> 8).astype(np.uint8)[..., None], 3, -1)
                entry["deviation"] = "16-bit gray: Folio keeps the high byte; Pillow clips values above 255"
                entry["pillow_decoded_crc32"] = entry["decoded_crc32"]
                entry["decoded_crc32"] = crc(high.tobytes())
                rgb = high
                upright = Image.fromarray(high, "RGB")
            if kind == "jpeg":
                entry["decoded_png"] = f"{name}.decoded.png"
                Image.fromarray(rgb).save(out_dir / entry["decoded_png"], optimize=True)
            configs = ["qwen35"] + extra_configs.get(name, [])
            entry["processed"] = [process(name, upright, rgb, c, out_dir, (name, c) in sampled, (name, c) in sampled)
                                  for c in configs]
            images.append(entry)

    # Resampler stress test: uniform noise (every rounding difference shows) resized to sizes that exercise
    # up/down scaling, one-pass resizes and both of Pillow 13's pass orders.
    noise = np.random.default_rng(99).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(noise).save(out_dir / "noise_120x90.png")
    resize_cases = []
    for w2, h2 in [(60, 45), (37, 90), (120, 20), (300, 200), (121, 91), (13, 7), (240, 33), (50, 89),
                   (119, 90), (120, 91), (7, 300), (1, 1), (118, 30), (90, 10), (400, 17)]:
        out = np.array(Image.fromarray(noise).resize((w2, h2), resample=Image.Resampling.BICUBIC))
        resize_cases.append({"width": w2, "height": h2, "crc32": crc(out.tobytes())})

    manifest = {
        "generator": "scripts/make_image_fixtures.py",
        "pillow": PIL.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "processor": "Qwen2VLImageProcessorPil",
        "configs": CONFIGS,
        "images": images,
        "resize_source": "noise_120x90.png",
        "resize_cases": resize_cases,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f.stat().st_size for f in out_dir.iterdir())
    print(f"{len(images)} images, {total / 1e6:.2f} MB in {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
