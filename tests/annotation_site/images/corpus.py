"""Odd image files, built in memory, for exercising the ingestion path.

Every function returns the bytes of one file. Nothing touches the network or
the disk except ``mixed_folder``, which writes a sample of them into a folder.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageDraw

pillow_heif.register_heif_opener()

RED_MARKER = (255, 0, 0)
MARKER_SIZE = 96

# The stored pixels that EXIF orientation N turns upright (the inverse of applying N).
_STORE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def photo_pixels(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: a coarse layout that differs per seed, gradients, texture, noise and shapes."""
    rng = np.random.default_rng(seed)
    # The coarse colour layout dominates the low frequencies that phash looks at,
    # so each seed gets a visibly different composition.
    layout = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    pixels = np.asarray(layout.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    texture = Image.fromarray(rng.integers(0, 256, (max(height // 24, 2), max(width // 24, 2), 3), dtype=np.uint8))
    pixels = pixels * 0.8 + np.asarray(texture.resize((width, height), Image.Resampling.BILINEAR), np.float32) * 0.2
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-40, 40, width, dtype=np.float32)[None, :] * np.cos(angle)
    ramp = ramp + np.linspace(-40, 40, height, dtype=np.float32)[:, None] * np.sin(angle)
    pixels += ramp[..., None]
    pixels += rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        fill = tuple(rng.integers(0, 256, 3).tolist())
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), outline=fill, width=max(width // 200, 1))
    return image


def _jpeg(image: Image.Image, quality: int = 90, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=_orientation_exif(orientation))
    return buffer.getvalue()


def _orientation_exif(orientation: int | None) -> bytes:
    if orientation is None:
        return b""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def photo_in_format(
    format: str,
    width: int = 320,
    height: int = 240,
    seed: int = 0,
    exif_orientation: int | None = None,
    mode: str = "RGB",
    **options: object,
) -> bytes:
    """A photo whose UPRIGHT size is width x height, saved by Pillow as format (JPEG, PNG, WEBP, TIFF, HEIF...).

    With exif_orientation the pixels are stored turned the way a camera stores them, so it is the same
    picture once the orientation is applied. mode "RGBA" adds an alpha ramp; "L", "CMYK"... convert.
    """
    image = photo_pixels(width, height, seed)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").rotate(90).resize(image.size))
    elif mode != "RGB":
        image = image.convert(mode)
    if exif_orientation in _STORE_FOR_ORIENTATION:
        image = image.transpose(_STORE_FOR_ORIENTATION[exif_orientation])
    if exif_orientation is not None:
        options["exif"] = _orientation_exif(exif_orientation)
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def photo_jpeg(
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    quality: int = 90,
    exif_orientation: int | None = None,
) -> bytes:
    """A photo-like RGB JPEG; see photo_in_format for what exif_orientation does."""
    return photo_in_format("JPEG", width, height, seed, exif_orientation, quality=quality)


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """Stored pixels are landscape 640 x 480 with a red block in their top-left corner,
    tagged with the given EXIF orientation (6: upright it is a 480 x 640 portrait)."""
    image = Image.new("RGB", (640, 480), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((0, 0, MARKER_SIZE - 1, MARKER_SIZE - 1), fill=RED_MARKER)
    return _jpeg(image, 92, orientation)


def truncated_jpeg() -> bytes:
    data = photo_jpeg()
    return data[: len(data) * 6 // 10]


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data has been overwritten in the middle."""
    data = bytearray(photo_in_format("PNG"))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    return bytes(data)


def text_file_as_jpg() -> bytes:
    return b"Meeting notes\n- renamed to .jpg by accident\n- still just text\n" * 20


def png16_gradient(width: int = 1024, height: int = 32) -> bytes:
    """16-bit grayscale PNG: a horizontal ramp over the whole 0..65535 range."""
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(np.tile(ramp, (height, 1))).save(buffer, "PNG")
    return buffer.getvalue()


def high_bit_depth_gray(kind: str = "uint16", width: int = 1024, height: int = 32) -> bytes:
    """A TIFF holding a horizontal ramp as 16-bit ("uint16"), 32-bit signed ("int32", range -70000..200000)
    or floating point ("float32", range 0..1) gray samples."""
    ramp = {
        "uint16": np.linspace(0, 65535, width).round().astype(np.uint16),
        "int32": np.linspace(-70000, 200000, width).round().astype(np.int32),
        "float32": np.linspace(0, 1, width, dtype=np.float32),
    }[kind]
    buffer = io.BytesIO()
    Image.fromarray(np.tile(ramp, (height, 1))).save(buffer, "TIFF")
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(width: int, height: int, bit_depth: int, color_type: int, rows: Iterable[bytes]) -> bytes:
    """A PNG written by hand, for what Pillow cannot or should not build in memory; rows yields filtered scanlines."""
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png16_rgb(width: int = 512, height: int = 64) -> bytes:
    """16-bit-per-channel RGB PNG (Pillow cannot write one): red ramps left to right, green top to bottom."""
    red = np.linspace(0, 65535, width).round().astype(">u2")
    rows = []
    for y in range(height):
        pixels = np.empty((width, 3), dtype=">u2")
        pixels[:, 0] = red
        pixels[:, 1] = round(65535 * y / max(height - 1, 1))
        pixels[:, 2] = 20000
        rows.append(b"\x00" + pixels.tobytes())
    return _png(width, height, 16, 2, rows)


def cmyk_jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    photo_pixels(width, height, seed).convert("CMYK").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def animated_image(format: str = "GIF", frames: int = 3) -> bytes:
    images = [Image.new("RGB", (64, 48), (40 * i % 256, 80, 200 - 30 * i % 200)) for i in range(frames)]
    for index, image in enumerate(images):
        ImageDraw.Draw(image).rectangle((index * 8, 10, index * 8 + 12, 30), fill=(255, 255, 0))
    buffer = io.BytesIO()
    images[0].save(buffer, format, save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    return animated_image("GIF", frames)


def decompression_bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny file that would decode to width x height pixels; built without ever holding the pixels."""
    row = b"\x00" + bytes((width + 7) // 8)
    return _png(width, height, 1, 0, (row for _ in range(height)))


def huge_dimensions_header() -> bytes:
    """A PNG header claiming 100000 x 100000 pixels, followed by almost no data."""
    return _png(100_000, 100_000, 8, 0, [b"\x00" * 16])


def palette_png_with_transparency() -> bytes:
    """Palette PNG: index 0 is fully transparent (the left half), index 1 is opaque blue (the right half)."""
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    ImageDraw.Draw(image).rectangle((32, 0, 63, 47), fill=1)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    return buffer.getvalue()


def rgba_png() -> bytes:
    """RGBA PNG: the left half is transparent black, the right half opaque green."""
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((32, 0, 63, 47), fill=(0, 160, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def malformed_exif_jpeg() -> bytes:
    """A good JPEG whose APP1 Exif segment announces a big-endian TIFF IFD of 65535 entries and then ends."""
    payload = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff\x01\x12"
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = photo_jpeg(320, 240, seed=7)
    return data[:2] + segment + data[2:]


def zero_bytes() -> bytes:
    return b""


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<script>fetch("/api/session").then(r => r.text()).then(alert)</script>'
        b'<rect width="100" height="100" fill="red"/></svg>\n'
    )


def html_page() -> bytes:
    return b"<!DOCTYPE html>\n<html><head><title>Not a photo</title></head><body>Hello</body></html>\n"


def polyglot() -> bytes:
    """A valid JPEG with a ZIP archive (holding an HTML page) appended after its end marker."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.html", html_page())
    return photo_jpeg(320, 240, seed=11) + archive.getvalue()


def mpo_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    """A multi-picture JPEG like phones write: the photo plus a second, smaller picture (depth map stand-in)."""
    primary = photo_pixels(width, height, seed)
    secondary = primary.resize((width // 4, height // 4)).convert("L").convert("RGB")
    buffer = io.BytesIO()
    primary.save(buffer, "MPO", save_all=True, append_images=[secondary], quality=90)
    return buffer.getvalue()


def display_p3_profile() -> bytes:
    """A minimal ICC v2 RGB display profile with Display P3 primaries (D50-adapted) and gamma 2.2."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    name = b"Display P3 (test)"
    # ASCII text, then empty Unicode and ScriptCode parts (4 + 4 + 2 + 1 + 67 bytes), as ICC v2 requires.
    description = b"desc\x00\x00\x00\x00" + struct.pack(">I", len(name) + 1) + name + b"\x00" + bytes(78)
    gamma = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\x00\x00"
    tags = [
        (b"desc", description),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        payload += bytes(-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = offset + len(body)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"\x00" * 4, 0x02100000, b"mntr", b"RGB ", b"XYZ ")
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + struct.pack(">3i", *(round(v * 65536) for v in (0.9642, 1.0, 0.8249)))
        + bytes(48)
    )
    return header + struct.pack(">I", len(tags)) + table + body


def wide_gamut_image(format: str = "PNG", color: tuple[int, int, int] = (200, 60, 60), **options: object) -> bytes:
    """A flat colour tagged with the Display P3 profile."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format, icc_profile=display_p3_profile(), **options)
    return buffer.getvalue()


def mixed_folder(path: Path) -> dict[str, bool]:
    """Write one file of each kind into path; return file name -> whether ingestion should accept it."""
    files: dict[str, tuple[bytes, bool]] = {
        "good_photo.jpg": (photo_jpeg(), True),
        "truncated.jpg": (truncated_jpeg(), False),
        "text_renamed.jpg": (text_file_as_jpg(), False),
        "sixteen_bit.png": (png16_gradient(), True),
        "sixteen_bit_rgb.png": (png16_rgb(), True),
        "cmyk.jpg": (cmyk_jpeg(), True),
        "rotated.jpg": (exif_rotated_jpeg(), True),
        "animated.gif": (animated_gif(), False),
        "bomb.png": (decompression_bomb_png(), False),
        "huge_header.png": (huge_dimensions_header(), False),
        "transparent_palette.png": (palette_png_with_transparency(), True),
        "rgba.png": (rgba_png(), True),
        "malformed_exif.jpg": (malformed_exif_jpeg(), True),
        "empty.jpg": (zero_bytes(), False),
        "script.svg": (svg_with_script(), False),
        "page.html": (html_page(), False),
        "polyglot.jpg": (polyglot(), True),
        "multi_picture.jpg": (mpo_jpeg(), True),
        "phone.heic": (photo_in_format("HEIF"), True),
    }
    path.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in files.items():
        (path / name).write_bytes(data)
    return {name: accepted for name, (_, accepted) in files.items()}
