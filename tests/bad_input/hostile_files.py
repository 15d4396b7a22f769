"""The bad-input corpus: every hostile or odd file an uploader can send, with what the platform must do
with it. Most generators live in tests/annotation_site/images/corpus.py; the ones here are the few that
corpus lacks (polyglots, wrong extensions, animated PNG/WebP, zips with tricks)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from tests.annotation_site.images import corpus


@dataclass(frozen=True)
class Case:
    name: str  # the file name the uploader gives (its extension may lie)
    data: Callable[[], bytes]
    # None: the file is imported; otherwise the words the refusal must contain.
    refusal: str | None
    format: str | None = None  # for an imported file: the format it must be stored as


def jpeg_with_html_appended() -> bytes:
    """A valid JPEG followed by an HTML page with a script: a browser sniffing content might run it."""
    return corpus.photo_jpeg(200, 150, seed=21) + b"<html><body><script>alert(document.cookie)</script></body></html>"


def gif_js_polyglot() -> bytes:
    """A GIF that is also JavaScript: the width bytes spell `/*`, so `GIF89a/*...*/=alert(1);` parses as
    an assignment. Pillow stops at the GIF trailer; the script sits after it."""
    image = Image.new("P", (0x2A2F, 1), 0)  # 0x2A2F little-endian is b"/*"
    image.putpalette([200, 30, 30] + [0] * 765)
    buffer = io.BytesIO()
    image.save(buffer, "GIF")
    data = buffer.getvalue()
    assert data[6:8] == b"/*" and b"*/" not in data
    return data + b"*/=alert(1);"


def png_named_jpg() -> bytes:
    return corpus.photo_in_format("PNG", 160, 120, seed=22)


def jpeg_named_png() -> bytes:
    return corpus.photo_jpeg(160, 120, seed=23)


def truncated_png() -> bytes:
    data = corpus.photo_in_format("PNG", 320, 240, seed=24)
    return data[: len(data) // 2]


def pdf_document() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def icon_file() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buffer, "ICO")
    return buffer.getvalue()


def zip_with_traversal_names() -> bytes:
    """A zip whose member names climb out of any folder it might be unpacked into."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../../../tmp/evil-traversal.jpg", corpus.photo_jpeg(120, 90, seed=25))
        archive.writestr("/etc/cron.d/evil.png", corpus.photo_in_format("PNG", 120, 90, seed=26))
    return buffer.getvalue()


def zip_bomb(inflated_bytes: int) -> bytes:
    """A zip holding one member of zeros that inflates to inflated_bytes (a few kB on disk)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("bomb.jpg", "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(inflated_bytes // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def zip_in_zip() -> bytes:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("inside.jpg", corpus.photo_jpeg(120, 90, seed=27))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("inner.zip", inner.getvalue())
    return outer.getvalue()


def not_a_zip() -> bytes:
    return b"PK\x03\x04 this is not really a zip archive" + bytes(64)


CASES: list[Case] = [
    # refused, each with the reason an uploader can act on
    Case("empty.jpg", corpus.zero_bytes, "empty file (0 bytes)"),
    Case("truncated.jpg", corpus.truncated_jpeg, "truncated"),
    Case("truncated.png", truncated_png, "truncated"),
    Case("corrupt.png", corpus.corrupt_png, "corrupt image data"),
    Case("notes.jpg", corpus.text_file_as_jpg, "text file, not an image"),
    Case("page.jpg", corpus.html_page, "HTML document, not an image"),
    Case("script.svg", corpus.svg_with_script, "SVG vector image: refused because SVG files can carry scripts"),
    Case("script-svg.png", corpus.svg_with_script, "SVG vector image"),
    Case("document.jpg", pdf_document, "PDF document, not an image"),
    Case("favicon.ico", icon_file, "unsupported image format ICO"),
    Case("huge-header.png", corpus.huge_dimensions_header, "decompression bomb: 10000.0 MP exceeds the 120.0 MP limit"),
    Case("bomb.png", corpus.decompression_bomb_png, "decompression bomb"),
    Case("animated.gif", corpus.animated_gif, "animated GIF (3 frames)"),
    Case("animated.png", lambda: corpus.animated_image("PNG", 4), "animated PNG (4 frames)"),
    Case("animated.webp", lambda: corpus.animated_image("WEBP", 2), "animated WEBP (2 frames)"),
    Case("fake.zip", not_a_zip, "not a readable zip archive"),
    # imported, as what they really are
    Case("polyglot-zip.jpg", corpus.polyglot, None, "JPEG"),
    Case("polyglot-html.jpg", jpeg_with_html_appended, None, "JPEG"),
    Case("polyglot.gif", gif_js_polyglot, None, "GIF"),
    Case("really-a-png.jpg", png_named_jpg, None, "PNG"),
    Case("really-a-jpeg.png", jpeg_named_png, None, "JPEG"),
    Case("malformed-exif.jpg", corpus.malformed_exif_jpeg, None, "JPEG"),
    Case("gray16.png", corpus.png16_gradient, None, "PNG"),
    Case("rgb16.png", corpus.png16_rgb, None, "PNG"),
    Case("gray16.tif", corpus.high_bit_depth_gray, None, "TIFF"),
    Case("cmyk.jpg", corpus.cmyk_jpeg, None, "JPEG"),
    Case("palette-transparent.png", corpus.palette_png_with_transparency, None, "PNG"),
    Case("rgba.png", corpus.rgba_png, None, "PNG"),
    Case("rotated.jpg", corpus.exif_rotated_jpeg, None, "JPEG"),
    Case("multi-picture.jpg", corpus.mpo_jpeg, None, "MPO"),
]
