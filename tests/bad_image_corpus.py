"""Builds, at test time, one small file of each kind of bad or unusual image input.

Shared by tests/test_bad_images.py and tests/test_data_check.py; no binary fixture is
committed. Every image is tiny so that scanning and decoding the whole corpus takes
well under a second.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(height: int, width: int, rgb) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (height, width, 3)).copy()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, nor lie about its size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


def rgb16_png(height: int, width: int, rgb16) -> bytes:
    row = b"\x00" + struct.pack(">" + "H" * 3 * width, *(list(rgb16) * width))
    return png_bytes(width, height, 16, 2, row * height)


def _noise_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, fmt)
    return buffer.getvalue()


def left_red_right_blue(height: int, width: int) -> np.ndarray:
    return np.concatenate([solid(height, width // 2, RED), solid(height, width // 2, BLUE)], 1)


def save_exif(path: Path, array: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, exif=exif, quality=95)
    return path


# kind -> (file name, status, a piece of the reason); `write_corpus` writes the files.
EXPECTED = {
    "plain RGB PNG": ("good.png", "used", ""),
    "zero-byte file": ("empty.jpg", "refused", "empty file (0 bytes)"),
    "truncated JPEG": ("cut.jpg", "refused", "truncated file"),
    "JPEG cut inside its header": ("cut_header.jpg", "refused", "truncated file"),
    "truncated PNG": ("cut.png", "refused", "truncated file"),
    "text with an image extension": ("notes.png", "refused", "not an image (text?)"),
    "16-bit grayscale PNG": ("gray16.png", "converted", "16-bit grayscale -> 8-bit RGB"),
    "16-bit RGB PNG": ("rgb16.png", "converted", "16-bit -> 8-bit"),
    "CMYK JPEG": ("cmyk.jpg", "converted", "CMYK -> RGB"),
    "RGBA PNG": ("rgba.png", "converted", "RGBA -> RGB (alpha dropped)"),
    "palette PNG": ("palette.png", "converted", "palette -> RGB"),
    "palette PNG with transparency": ("palette_t.png", "converted",
                                      "palette -> RGB (transparency dropped)"),
    "palette BMP (TensorFlow misreads it)": ("palette.bmp", "converted", "palette -> RGB"),
    "grayscale JPEG": ("gray.jpg", "converted", "grayscale -> RGB"),
    "EXIF orientation 6 JPEG": ("exif6.jpg", "converted", "EXIF orientation 6 -> rotated"),
    "EXIF orientation 8 JPEG": ("exif8.jpg", "converted", "EXIF orientation 8 -> rotated"),
    "1x1 image": ("dot.png", "refused", "1x1 px is smaller than the minimum of 2 px"),
    "decompression bomb (declares 100000x100000)": (
        "bomb.png", "refused", "declares 100000x100000 px (10000 MP), over the 179 MP limit"),
}

# Expected RGB of the converted files (whole image), and the tolerance of each.
EXPECTED_RGB = {
    "gray16.png": ((156, 156, 156), 1),  # 40000 / 257
    "rgb16.png": ((255, 128, 0), 1),  # (65535, 32896, 0) / 257
    "cmyk.jpg": ((255, 0, 0), 3),  # C=0 M=255 Y=255 K=0
    "rgba.png": ((10, 20, 30), 0),
    "palette.png": ((0, 200, 0), 0),
    "palette_t.png": ((0, 200, 0), 0),
    "palette.bmp": ((0, 200, 0), 0),
    "gray.jpg": ((90, 90, 90), 2),
}


def write_corpus(folder: Path) -> dict[str, Path]:
    """Writes every file of `EXPECTED` into `folder`; returns kind -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    f = {name: folder / name for name, _, _ in EXPECTED.values()}
    Image.fromarray(solid(8, 8, (40, 80, 120))).save(f["good.png"])
    f["empty.jpg"].write_bytes(b"")
    jpeg = _noise_bytes("JPEG")
    f["cut.jpg"].write_bytes(jpeg[: len(jpeg) // 2])  # cut in the middle of the scan
    f["cut_header.jpg"].write_bytes(jpeg[:300])
    f["cut.png"].write_bytes(_noise_bytes("PNG")[:1500])
    f["notes.png"].write_text("shopping list: eggs, milk\n")
    Image.fromarray(np.full((6, 8), 40000, np.uint16)).save(f["gray16.png"])
    f["rgb16.png"].write_bytes(rgb16_png(6, 8, (65535, 32896, 0)))
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(f["cmyk.jpg"], quality=100)
    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(f["rgba.png"])
    palette = Image.new("P", (8, 6), 1)
    palette.putpalette([255, 255, 255, 0, 200, 0] + [0] * 762)
    palette.save(f["palette.png"])
    palette.save(f["palette_t.png"], transparency=1)
    palette.save(f["palette.bmp"])
    Image.new("L", (8, 6), 90).save(f["gray.jpg"], quality=100)
    # 16 x 32 (H x W), left half red, right half blue; displayed upright after rotation.
    save_exif(f["exif6.jpg"], left_red_right_blue(16, 32), 6)
    save_exif(f["exif8.jpg"], left_red_right_blue(16, 32), 8)
    Image.new("RGB", (1, 1), RED).save(f["dot.png"])
    f["bomb.png"].write_bytes(png_bytes(100000, 100000, 8, 2, b"\x00" * 64)[:200])
    return {kind: f[name] for kind, (name, _, _) in EXPECTED.items()}
