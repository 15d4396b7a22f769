"""Turn uploaded bytes into what the annotation site stores and shows.

Pure and self-contained on purpose: it runs inside process-pool workers, so it
imports nothing from Django or the rest of the site. Every unusable file ends in
``ImageRejected`` with one reason an uploader can act on.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import imagehash
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageFile, features

pillow_heif.register_heif_opener()

_MB = 1024 * 1024
_TRUNCATED = "truncated image data (the file ends early)"
_MALFORMED_EXIF = "malformed EXIF ignored"


@dataclass(frozen=True)
class ImagingLimits:
    max_bytes: int = 80 * 1024 * 1024
    max_pixels: int = 120_000_000
    thumbnail_size: int = 320  # longest side of the thumbnail


@dataclass(frozen=True)
class Derivative:
    data: bytes
    extension: str  # "jpg" or "png"
    content_type: str  # "image/jpeg" / "image/png"
    width: int
    height: int


@dataclass(frozen=True)
class PreparedImage:
    sha256: str  # hex digest of the original bytes
    phash: str  # 16 hex chars, perceptual hash of the upright thumbnail
    format: str  # Pillow format name of the original: "JPEG", "MPO", "PNG", "WEBP", "HEIF"...
    extension: str  # extension to store the original under, from the format, never the file name
    width: int  # upright width (after EXIF orientation)
    height: int  # upright height
    orientation: int  # EXIF orientation that was applied (1..8; 1 when absent or unreadable)
    source_mode: str  # Pillow mode of the original: "RGB", "CMYK", "I;16", "P", "RGBA"...
    byte_size: int
    display: Derivative | None  # None: the original itself is fit to show in a browser as-is
    thumbnail: Derivative
    notes: tuple[str, ...] = ()  # non-fatal observations, e.g. "malformed EXIF ignored"


class ImageRejected(ValueError):
    """The file cannot be used; ``reason`` says why, in words an uploader can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "MPO": "jpg",  # phones' JPEGs with a depth map or preview appended: still a JPEG to browsers
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tif",
    "BMP": "bmp",
    "HEIF": "heic",
    **({"AVIF": "avif"} if features.check("avif") else {}),
}
_ACCEPTED = ", ".join(name for name in _EXTENSIONS if name != "MPO")
_SERVED_AS_IS = {"JPEG", "MPO", "PNG", "WEBP", "GIF"}
_ANIMATABLE = {"GIF", "PNG", "WEBP", "AVIF"}
_LOSSY = {"JPEG", "MPO", "HEIF", "AVIF"}
# Modes we can bring to 8-bit RGB; anything else (LAB, HSV...) is refused up front rather than failing mid-way.
_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow and its plugins raise on hostile or damaged input; all of it means "unreadable file".
_UNREADABLE = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    RuntimeError,
    ZeroDivisionError,
)
_SIGNATURES = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
_SRGB = ImageCms.createProfile("sRGB")


def prepare_image(data: bytes, *, limits: ImagingLimits = ImagingLimits()) -> PreparedImage:
    """Validate an upload and build its thumbnail, perceptual hash and (when needed) a browser-safe display copy."""
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"file too large: {_file_size(len(data))} exceeds the {_file_size(limits.max_bytes)} limit")
    notes: list[str] = []
    with _rejecting_unreadable(data, limits):
        im = _open(data, limits, notes)
        source_mode = im.mode
        if im.format not in ("JPEG", "MPO"):
            # Only JPEG can decode at reduced scale, so everything else is decoded in full on either path;
            # doing it first also keeps decode errors out of the EXIF reading, which for PNG may need the pixels.
            im.load()
        orientation = _exif_orientation(im, notes)
        width, height = im.size if orientation < 5 else im.size[::-1]
        if im.format in _SERVED_AS_IS and im.mode in ("RGB", "L") and orientation == 1:
            display = None
            thumbnail = _to_srgb(_decode_reduced(im, limits.thumbnail_size), notes)
        else:
            im.load()
            upright = _to_srgb(im, notes)
            if orientation != 1:
                upright = upright.transpose(_UPRIGHT[orientation])
            if _is_lossy(im.format, data):
                display = _derivative(upright, "JPEG", quality=95, subsampling=0)
            else:
                # Lossless sources must not gain compression artefacts; level 1 keeps encoding fast.
                display = _derivative(upright, "PNG", compress_level=1)
            thumbnail = upright
        thumbnail.thumbnail((limits.thumbnail_size, limits.thumbnail_size), reducing_gap=2.0)
        thumbnail_file = _derivative(thumbnail, "JPEG", quality=85)
    return PreparedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        phash=str(imagehash.phash(thumbnail)),
        format=str(im.format),
        extension=_EXTENSIONS[str(im.format)],
        width=width,
        height=height,
        # pillow_heif turns HEIF upright while decoding and resets the tag; report what it applied.
        orientation=int(im.info.get("original_orientation") or orientation),
        source_mode=source_mode,
        byte_size=len(data),
        display=display,
        thumbnail=thumbnail_file,
        notes=tuple(notes),
    )


def hamming_distance(a: str, b: str) -> int:
    """Number of differing bits between two 16-hex-digit perceptual hashes."""
    if len(a) != 16 or len(b) != 16:
        raise ValueError(f"expected two 16-hex-digit hashes, got {a!r} and {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _file_size(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB // 10 else f"{size / 1024:.0f} KB"


@contextmanager
def _rejecting_unreadable(data: bytes, limits: ImagingLimits) -> Iterator[None]:
    with warnings.catch_warnings():
        # Pillow only warns about oversized GIF frames or TIFF tiles met while decoding; those are bombs too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(_bomb_reason(exc, limits)) from exc
        except MemoryError as exc:
            raise ImageRejected("image too large to decode in the available memory") from exc
        except _UNREADABLE as exc:
            if _ends_early(data, exc):
                raise ImageRejected(_TRUNCATED) from exc
            raise ImageRejected(f"corrupt image data: {exc or type(exc).__name__}") from exc


def _bomb_reason(exc: Exception, limits: ImagingLimits) -> str:
    # Pillow refuses sizes past twice its global limit inside Image.open, before our own header check
    # sees them; restate its pixel count in our terms so every bomb reads alike.
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", str(exc))
    if found is None:
        return f"decompression bomb: {exc}"
    pixels, pillow_limit = int(found[1]), int(found[2])
    limit = limits.max_pixels if pixels > limits.max_pixels else pillow_limit
    return f"decompression bomb: {pixels / 1e6:.1f} MP exceeds the {limit / 1e6:.1f} MP limit"


def _ends_early(data: bytes, exc: BaseException) -> bool:
    message = str(exc).lower()
    # libwebp only says it "could not create decoder object", but a RIFF header states the full length.
    short_riff = data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") + 8 > len(data)
    return "truncated" in message or "end of file" in message or short_riff


def _open(data: bytes, limits: ImagingLimits, notes: list[str]) -> ImageFile.ImageFile:
    """Identify the file from its header alone and refuse what must never be decoded."""
    with warnings.catch_warnings(record=True) as complaints:
        warnings.simplefilter("always")
        # Pillow warns past a fixed global 89.5 MP; the configured limit checked below is the one that decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError:
            raise ImageRejected(_unidentified_reason(data)) from None
    if any("EXIF" in str(complaint.message) for complaint in complaints):
        # JPEG parses its EXIF while opening; the warning would otherwise reach the import's output.
        notes.append(_MALFORMED_EXIF)
    if im.format not in _EXTENSIONS:
        raise ImageRejected(f"unsupported image format {im.format} (accepted: {_ACCEPTED})")
    width, height = im.size
    if width * height > limits.max_pixels:
        raise ImageRejected(
            f"decompression bomb: {width} x {height} = {width * height / 1e6:.1f} MP "
            f"exceeds the {limits.max_pixels / 1e6:.1f} MP limit"
        )
    if im.mode not in _MODES and not im.mode.startswith("I;16"):
        raise ImageRejected(f"unsupported colour mode {im.mode}")
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format in _ANIMATABLE:
        raise ImageRejected(f"animated {im.format} ({frames} frames): a quality label needs a still photo")
    if frames > 1 and im.format != "MPO":  # MPO's extra pictures are depth maps or previews of the same shot
        notes.append(f"the file holds {frames} images: only the first is used")
    return im


def _unidentified_reason(data: bytes) -> str:
    head = data[:4096]
    lowered = head.lower()
    if b"<html" in lowered or b"<!doctype html" in lowered:
        return "HTML document, not an image"
    if b"<svg" in lowered:
        return "SVG vector image: refused because SVG files can carry scripts"
    if head.startswith(b"%PDF"):
        return "PDF document, not an image"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return f"corrupt or truncated {name} file: its header cannot be read"
    if head[4:8] == b"ftyp":
        if head[8:12] in _HEIF_BRANDS:
            return "corrupt or truncated HEIF/AVIF file: its header cannot be read"
        return "video or other media file, not a still image"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" not in text:
        return "text file, not an image"
    return "not a recognised image file"


def _exif_orientation(im: Image.Image, notes: list[str]) -> int:
    with warnings.catch_warnings(record=True) as complaints:
        warnings.simplefilter("always")
        try:
            exif = im.getexif()
            value = exif.get(0x0112, 1)
            # Pillow shrugs off most garbage with a warning or an empty result rather than an error.
            malformed = bool(complaints) or (bool(im.info.get("exif")) and not exif)
        except Exception:  # EXIF parsing raises a zoo of errors; metadata alone never rejects a photo
            value, malformed = 1, True
    if malformed and _MALFORMED_EXIF not in notes:
        notes.append(_MALFORMED_EXIF)
    if not isinstance(value, int) or not 1 <= value <= 8:
        notes.append(f"invalid EXIF orientation {value!r} ignored")
        return 1
    return value


def _decode_reduced(im: ImageFile.ImageFile, longest_side: int) -> Image.Image:
    if im.format in ("JPEG", "MPO") and max(im.size) > longest_side:
        # DCT scaling still reads every entropy-coded block, so truncation is caught at a fraction of the cost;
        # the smallest scale that still covers the thumbnail (1/8 for phone photos) is also a good downsampler.
        scale = longest_side / max(im.size)
        im.draft("RGB", (max(1, math.ceil(im.width * scale)), max(1, math.ceil(im.height * scale))))
    im.load()
    return im


def _to_srgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """8-bit RGB in sRGB, without transparency, whatever the source mode and profile."""
    icc = im.info.get("icc_profile")
    if im.mode.startswith("I") or im.mode == "F":
        im = _to_8bit(im, notes)
    if im.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        notes.append("composited transparency over white")
    if im.mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    if icc:
        try:
            conversion = _srgb_transform(icc, im.mode)
        except ImageCms.PyCMSError:
            notes.append("unreadable ICC profile ignored")
        else:
            if conversion is not None:
                description, transform = conversion
                notes.append(f"converted {im.mode} from the ICC profile '{description}' to sRGB")
                return transform.apply(im)
    if im.mode == "CMYK":
        notes.append("converted CMYK to RGB without a colour profile (colours approximate)")
    return im if im.mode == "RGB" else im.convert("RGB")


@functools.lru_cache(maxsize=8)
def _srgb_transform(icc: bytes, mode: str) -> tuple[str, ImageCms.ImageCmsTransform] | None:
    """None when the profile already is sRGB. Cached because cameras and phones embed the same few profiles."""
    profile = ImageCms.getOpenProfile(io.BytesIO(icc))
    description = ImageCms.getProfileDescription(profile).strip()
    if "srgb" in description.lower():
        return None
    return description, ImageCms.buildTransform(profile, _SRGB, mode, "RGB")


def _to_8bit(im: Image.Image, notes: list[str]) -> Image.Image:
    """Scale high-bit-depth grayscale to 8 bits; Pillow's own convert("L") clips everything above 255 to white."""
    values = np.asarray(im)
    if im.mode.startswith("I;16"):
        eight = (values >> 8).astype(np.uint8)  # exact for 8-bit data widened by 257
    else:
        samples = np.nan_to_num(values.astype(np.float32))
        low, high = float(samples.min()), float(samples.max())
        white = 1.0 if im.mode == "F" else 65535.0
        if low < 0 or high > white:
            # Signed or 32-bit samples have no conventional white point, so stretch the image's own range.
            samples -= low
            white = (high - low) or 1.0
        samples *= 255 / white
        eight = np.rint(samples).astype(np.uint8)
    notes.append(f"scaled {im.mode} samples to 8 bits")
    return Image.fromarray(eight)


def _is_lossy(format: str | None, data: bytes) -> bool:
    if format == "WEBP":
        return not _is_lossless_webp(data)
    return format in _LOSSY


def _is_lossless_webp(data: bytes) -> bool:
    offset = 12
    while offset + 8 <= len(data):
        chunk = data[offset : offset + 4]
        if chunk in (b"VP8 ", b"VP8L"):
            return chunk == b"VP8L"
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + size + size % 2  # RIFF chunks are padded to even length
    return False


def _derivative(im: Image.Image, format: str, **options: object) -> Derivative:
    buffer = io.BytesIO()
    # Derivatives are sRGB by construction; a profile inherited from the source would mislabel them.
    im.save(buffer, format, icc_profile=None, **options)
    extension, content_type = ("jpg", "image/jpeg") if format == "JPEG" else ("png", "image/png")
    return Derivative(buffer.getvalue(), extension, content_type, im.width, im.height)
