"""12-megapixel phone-like JPEGs for import and thumbnail benchmarks.

A benchmark is only as honest as its input. Flat-colour or plain upscaled pictures compress to a
fraction of a real photo's size and decode faster, so uploads, hashing and thumbnailing would all look
better than they are. These files have what real phone photos have: 4000x3000 pixels, a real scene
(a scikit-image sample photo, so nothing downloads), sensor-like noise and fine texture, JPEG quality
90 with 4:2:0 chroma subsampling, and EXIF with Make/Model/DateTime and Orientation -- 6 for the
"portrait" share, whose pixels are stored sideways exactly as a phone stores them.

Same seed -> same files, byte for byte. Usage:

    python -m benchmarks.phone_photos OUT_DIR [--count 24] [--seed S] [--rotated-share 0.3]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter
from scipy import ndimage

__all__ = ["GENERATOR_VERSION", "HEIGHT", "MAKE", "MODEL", "QUALITY", "WIDTH", "main", "make_phone_jpegs", "phone_jpeg"]

# Part of every file name: files already on disk are reused (benchmarks keep their photos between runs),
# so any change to what a given (seed, index) produces must bump this, or stale files would be reused.
GENERATOR_VERSION = 2
WIDTH, HEIGHT = 4000, 3000  # stored (sensor) size; portrait photos are these pixels turned sideways
QUALITY = 90
SUBSAMPLING = "4:2:0"  # what phone cameras write
MAKE, MODEL = "RealQA Bench", "Phone 12MP"  # clearly synthetic, so nobody mistakes them for real EXIF
SOURCES = ("astronaut", "coffee", "chelsea", "rocket")  # colour photographs of real scenes, in the wheel

# The noise/texture "detail" field is built from a small periodic tile (cheap to make) repeated over a
# frame a tile larger than the picture, then cut at a random offset per photo. Period 1024 px is far
# beyond JPEG's 8x8 blocks and invisible in noise, so the files compress as if it were not repeated.
_TILE = 1024
_LUMA_NOISE = 5.0  # sensor noise left after the phone's denoiser, in 8-bit levels (sd)
_TEXTURE = 4.0  # fine texture: noise band-passed to 1-3 px features, like foliage, fabric, skin pores
_CHROMA_NOISE = 2.0  # blotchy colour noise, per channel
# Each photo is "shot" at one of these noise gains, as if at a different ISO; that spreads the file
# sizes the way a real camera roll does (one cached field per gain, ~60 MB each).
_ISO_GAINS = (0.85, 1.2, 1.6)

_ORIENTATION, _MAKE, _MODEL, _DATETIME, _EXIF_IFD, _DATETIME_ORIGINAL = 0x0112, 0x010F, 0x0110, 0x0132, 0x8769, 0x9003
_FIRST_SHOT = datetime(2024, 6, 1, 9, 0, 0)


def make_phone_jpegs(out_dir: Path, count: int, *, seed: int = 0, rotated_share: float = 0.0) -> list[Path]:
    """Write `count` phone-like 12 MP JPEGs into out_dir and return their paths, in order.

    Photo i depends only on (seed, i, rotated), so a larger count only adds files, and a file already
    there under its name is kept as it is (it has the same bytes; benchmarks reuse their photos between
    runs). A `rotated_share` of them (spread evenly, exactly floor(count * share)) are portrait shots:
    stored 4000x3000 with Orientation 6, upright 3000x4000, and named "-portrait".
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 0.0 <= rotated_share <= 1.0:
        raise ValueError("rotated_share must be between 0 and 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        # Evenly spread rather than random, so the share is exact and prefix-stable.
        rotated = math.floor((index + 1) * rotated_share + 1e-9) > math.floor(index * rotated_share + 1e-9)
        path = out_dir / f"phone-v{GENERATOR_VERSION}-{seed}-{index:05d}{'-portrait' if rotated else ''}.jpg"
        if not path.exists():
            # Via a temporary name, so an interrupted run never leaves half a file that a later run would keep.
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(phone_jpeg(index, seed=seed, rotated=rotated))
            temporary.replace(path)
        paths.append(path)
    return paths


def phone_jpeg(index: int, *, seed: int = 0, rotated: bool = False) -> bytes:
    """The bytes of photo `index` of a seed: 4000x3000 stored, Orientation 6 (portrait) when rotated."""
    rng = np.random.default_rng([seed, index])
    scene = _scene(rng, portrait=rotated)
    if rotated:
        # A phone held upright still stores sensor-shaped (landscape) pixels and tags Orientation 6
        # ("turn 90° clockwise to view"): the stored pixels are the upright view turned counter-clockwise.
        # Turning the small scene before upscaling costs nothing, and the noise added next is isotropic.
        scene = scene.transpose(Image.Transpose.ROTATE_90)
    picture = scene.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    detail = _detail_field(seed, _ISO_GAINS[int(rng.integers(len(_ISO_GAINS)))])
    left, top = (int(v) for v in rng.integers(0, _TILE, size=2))
    # One C pass: picture + (detail - 128), clipped to 0..255 like a sensor clips.
    picture = ImageChops.add(picture, detail.crop((left, top, left + WIDTH, top + HEIGHT)), 1.0, -128)

    exif = Image.Exif()
    shot_at = _FIRST_SHOT + timedelta(days=seed % 3650, seconds=index * 97 + int(rng.integers(0, 60)))
    stamp = shot_at.strftime("%Y:%m:%d %H:%M:%S")
    exif[_MAKE], exif[_MODEL], exif[_DATETIME] = MAKE, MODEL, stamp
    exif[_ORIENTATION] = 6 if rotated else 1
    exif.get_ifd(_EXIF_IFD)[_DATETIME_ORIGINAL] = stamp  # where most readers look for "taken at"
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=QUALITY, subsampling=SUBSAMPLING, exif=exif.tobytes())
    return buffer.getvalue()


def _scene(rng: np.random.Generator, *, portrait: bool) -> Image.Image:
    """A varied framing of a sample photo at its native resolution: random 4:3 (or 3:4) window, mirror,
    white balance, and the sharpening every phone applies."""
    source = _source(SOURCES[int(rng.integers(len(SOURCES)))])
    height, width = source.shape[:2]
    aspect = 3 / 4 if portrait else 4 / 3
    window_w = min(width, round(height * aspect))
    window_w = round(window_w * rng.uniform(0.7, 1.0))
    window_h = min(height, round(window_w / aspect))
    left = int(rng.integers(0, width - window_w + 1))
    top = int(rng.integers(0, height - window_h + 1))
    pixels = source[top : top + window_h, left : left + window_w].astype(np.float32)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    pixels *= rng.uniform(0.9, 1.1, size=3).astype(np.float32)  # white balance differs shot to shot
    scene = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return scene.filter(ImageFilter.UnsharpMask(radius=2, percent=80, threshold=2))


@lru_cache(maxsize=None)
def _source(name: str) -> np.ndarray:
    from skimage import data  # imported late: slow to import, and only generation needs it

    return np.ascontiguousarray(np.asarray(getattr(data, name)())[:, :, :3])


@lru_cache(maxsize=len(_ISO_GAINS))
def _detail_field(seed: int, gain: float) -> Image.Image:
    """Noise + fine texture centred on 128, one tile larger than the picture in each direction."""
    rng = np.random.default_rng([seed, 0x5EED, round(gain * 1000)])
    shape = (_TILE, _TILE)

    def periodic(sigma: float) -> np.ndarray:
        # mode="wrap" keeps the tile seamless when it is repeated.
        field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
        return field / field.std()

    luma = gain * _LUMA_NOISE * rng.standard_normal(shape, dtype=np.float32)
    luma += gain * _TEXTURE * (periodic(1.0) - 0.5 * periodic(3.0))  # band-pass: fine features, not blotches
    chroma = np.stack([gain * _CHROMA_NOISE * periodic(1.5) for _ in range(3)], axis=2)
    tile = np.clip(np.rint(128.0 + luma[:, :, None] + chroma), 0, 255).astype(np.uint8)
    reps = (math.ceil((HEIGHT + _TILE) / _TILE), math.ceil((WIDTH + _TILE) / _TILE), 1)
    return Image.fromarray(np.tile(tile, reps)[: HEIGHT + _TILE, : WIDTH + _TILE], "RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phone_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rotated-share", type=float, default=0.0)
    args = parser.parse_args(argv)
    existing = set(args.out_dir.glob("*.jpg")) if args.out_dir.is_dir() else set()
    started = time.perf_counter()
    paths = make_phone_jpegs(args.out_dir, args.count, seed=args.seed, rotated_share=args.rotated_share)
    elapsed = time.perf_counter() - started
    for path in paths:
        print(path)
    made = len([path for path in paths if path not in existing])
    sizes = [path.stat().st_size / 1e6 for path in paths]
    if sizes:
        print(
            f"{len(paths)} JPEGs {WIDTH}x{HEIGHT} in {args.out_dir} ({made} made, {len(paths) - made} kept): "
            f"{sum(sizes):.1f} MB, min/median/max {min(sizes):.2f}/{statistics.median(sizes):.2f}/{max(sizes):.2f} MB"
            + (f", {1000 * elapsed / made:.0f} ms per file made (includes a one-off setup)" if made else ""),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
