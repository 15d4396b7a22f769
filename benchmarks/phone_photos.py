"""12-megapixel phone-like JPEGs for the benchmarks, built offline from scikit-image's sample photos.

Flat or smooth images compress to a fraction of a real photo's size and decode faster, which would
flatter any decode-bound figure; these carry sensor-like noise and fine texture so that their size
(3-6 MB) and decode time resemble a phone's.

    python -m benchmarks.phone_photos OUT_DIR --count 24 [--rotated-share 0.3]"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
_SIZE = (4000, 3000)


def _source(index: int) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, _SOURCES[index % len(_SOURCES)])()).convert("RGB")


def _exif(orientation: int, index: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "RealQA Bench"  # Make
    exif[0x0110] = "Phone 12MP"  # Model
    exif[0x0132] = f"2026:11:{1 + index % 28:02d} 12:00:00"  # DateTime
    exif[0x0112] = orientation
    return exif.tobytes()


def phone_jpeg(index: int, *, seed: int = 0, rotated: bool = False) -> bytes:
    rng = np.random.default_rng([seed, index])
    width, height = _SIZE[::-1] if rotated else _SIZE  # a portrait shot when the phone was held upright
    upright = _source(index).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(upright, dtype=np.float32)
    # Luma noise plus a little chroma noise, as a phone at moderate ISO leaves it.
    pixels += rng.standard_normal((height, width, 1), dtype=np.float32) * 5.0
    pixels += rng.standard_normal((height, width, 3), dtype=np.float32) * 2.0
    noisy = Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))
    stored = noisy.transpose(Image.Transpose.ROTATE_90) if rotated else noisy
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, subsampling="4:2:0", exif=_exif(6 if rotated else 1, index))
    return buffer.getvalue()


def make_phone_jpegs(out_dir: Path, count: int, *, seed: int = 0, rotated_share: float = 0.0) -> list[Path]:
    """Write `count` files (deterministic from the seed); files already there are kept as they are."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        rotated = index < round(count * rotated_share)
        path = out_dir / f"phone-{seed}-{index:04d}{'-portrait' if rotated else ''}.jpg"
        if not path.exists():
            path.write_bytes(phone_jpeg(index, seed=seed, rotated=rotated))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description="Write 12 MP phone-like JPEGs")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rotated-share", type=float, default=0.0)
    args = parser.parse_args()
    for path in make_phone_jpegs(args.out_dir, args.count, seed=args.seed, rotated_share=args.rotated_share):
        print(path)


if __name__ == "__main__":
    main()
