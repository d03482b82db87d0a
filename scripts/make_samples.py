"""Draws the sample images in samples/ (committed; run again only to change them): python3 scripts/make_samples.py"""
from PIL import Image, ImageDraw

def receipt(path):
    img = Image.new("RGB", (320, 240), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([10, 10, 310, 230], outline="black", width=2)
    lines = ["CAFE FOLIO", "2x Espresso    5.20", "1x Croissant   2.80", "TOTAL EUR      8.00", "Thank you!"]
    for i, line in enumerate(lines):
        d.text((30, 30 + i * 38), line, fill="black")
    img.save(path, optimize=True)

def landscape(path):
    img = Image.new("RGB", (256, 192), (135, 190, 235))
    d = ImageDraw.Draw(img)
    d.ellipse([180, 20, 230, 70], fill=(255, 220, 60))
    d.polygon([(0, 192), (90, 70), (170, 192)], fill=(90, 110, 90))
    d.polygon([(100, 192), (190, 90), (256, 150), (256, 192)], fill=(70, 90, 75))
    d.rectangle([0, 170, 256, 192], fill=(60, 140, 60))
    img.save(path, quality=85)

def stamp(path):
    img = Image.new("RGB", (200, 120), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([8, 8, 192, 112], outline=(200, 30, 30), width=4)
    d.text((40, 40), "APPROVED", fill=(200, 30, 30))
    d.text((40, 70), "2026-03-14", fill=(200, 30, 30))
    img.save(path, optimize=True)

receipt("samples/receipt.png")
landscape("samples/landscape.jpg")
stamp("samples/contracts/approval-stamp.png")
