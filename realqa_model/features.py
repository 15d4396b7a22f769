"""Hand-crafted quality and aesthetics features of a photo, fast enough to pre-score every import.

    from realqa_model import features
    vector = features.extract("photo.jpg")              # float32 (DIM,), deterministic
    matrix = features.extract_many(paths, workers=2)    # float32 (N, DIM)

What a rater judges in RealQA's low and middle levels is mostly measurable without a neural network:
sharpness (clarity), noise and JPEG blocks, the luminance histogram (exposure), saturation and
colourfulness, tilt of the dominant lines (level shot), edge density (clutter), sharpness of the centre
against the border (subject against background). The high-level scores lean on the same cues plus the
colour layout, which a 4x4 Lab thumbnail carries.

Speed is the point: a 12-megapixel JPEG is decoded with DCT scaling (``Image.draft``, 1/4 size for a
4000x3000 photo) instead of in full, and every feature is a handful of vectorised numpy passes over
that reduced image (~1000x750, "fine") and two smaller copies (longest side 512, "mid", and 256,
"coarse"). Features are plain numbers with a roughly unit scale (logs, shares, normalised angles);
:data:`NOMINAL_CENTER` and :data:`NOMINAL_SCALE` standardise them approximately without any training
data (used for cold-start embeddings); a trained scorer standardises with its own statistics.

Input: a path (str or Path), the file's bytes, or a PIL image. Paths and bytes are preferred: the JPEG
quantisation table and the bits per pixel come from the file, and only files get the DCT-scaled decode.

Bump :data:`FEATURES_VERSION` whenever any value could change: cached feature vectors and trained
scorers are tied to it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile

__all__ = [
    "DIM",
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "NOMINAL_CENTER",
    "NOMINAL_SCALE",
    "FeatureError",
    "extract",
    "extract_many",
]

FEATURES_VERSION = "hc-1"

# Working sizes (longest side, pixels). The draft decode asks for at least _DRAFT_SIDE, which for a
# 4000x3000 JPEG means scale 1/4 (1000x750): 1/8 would be below 512 and costs nearly the same to decode.
_DRAFT_SIDE = 512
_FINE_MAX = 1024
_MID = 512
_COARSE = 256

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}

_GEOMETRY = ["log_aspect", "log_megapixels"]
_COMPRESSION = ["is_jpeg", "log_jpeg_quant", "log1p_bits_per_pixel", "blockiness"]
_SHARPNESS = [
    "log_lap_var_fine",
    "log_grad_energy_fine",
    "log_grad_p99_fine",
    "log_lap_var_mid",
    "log_grad_energy_mid",
    "log_lap_var_coarse",
    "log_grad_energy_coarse",
]
_NOISE = ["log_noise_fine", "log_noise_mid"]
_EXPOSURE = [
    "luma_mean",
    "luma_std",
    "luma_p01",
    "luma_p05",
    "luma_p25",
    "luma_p50",
    "luma_p75",
    "luma_p95",
    "luma_p99",
    "share_black",
    "share_white",
    "share_channel_clipped",
    "luma_entropy",
]
_COLOUR = ["sat_mean", "sat_std", "sat_p95", "colourfulness", "mean_rg", "mean_yb"]
_CONTRAST = ["local_contrast", "centre_minus_border_luma"]
_TILT = ["line_coherence_2", "line_tilt_2", "line_coherence_4", "line_tilt_4", "share_axis_aligned", "share_near_axis"]
_CLUTTER = ["edge_density", "edge_density_centre", "edge_density_border", "orientation_entropy"]
_SUBJECT = ["log_centre_border_sharpness", "log_max_cell_sharpness", "log_min_cell_sharpness", "cell_sharpness_spread"]
_LAYOUT = [f"layout_L_{r}{c}" for r in range(4) for c in range(4)] + [
    f"layout_{ch}_{r}{c}" for ch in "ab" for r in range(2) for c in range(2)
]

FEATURE_NAMES: tuple[str, ...] = tuple(
    _GEOMETRY
    + _COMPRESSION
    + _SHARPNESS
    + _NOISE
    + _EXPOSURE
    + _COLOUR
    + _CONTRAST
    + _TILT
    + _CLUTTER
    + _SUBJECT
    + _LAYOUT
)
DIM = len(FEATURE_NAMES)

# Approximate centre and spread of each feature (mean and standard deviation, two digits) over ~150 crops
# of scikit-image's sample photos with random blur, noise, JPEG quality, exposure, saturation, tilt and
# scale, plus phone-like 12 MP JPEGs (megapixels centred on 1 MP by hand). Only for standardising without
# training data (cold-start embeddings); a trained scorer keeps its own statistics.
_NOMINAL: dict[str, tuple[float, float]] = {
    "log_aspect": (0.4, 0.24),
    "log_megapixels": (0.0, 1.5),
    "is_jpeg": (0.8, 0.4),
    "log_jpeg_quant": (3.0, 1.7),
    "log1p_bits_per_pixel": (0.92, 0.77),
    "blockiness": (0.35, 0.42),
    "log_lap_var_fine": (-6.6, 2.1),
    "log_grad_energy_fine": (-7.4, 1.6),
    "log_grad_p99_fine": (-2.5, 0.97),
    "log_lap_var_mid": (-6.3, 2.0),
    "log_grad_energy_mid": (-7.3, 1.5),
    "log_lap_var_coarse": (-5.8, 2.0),
    "log_grad_energy_coarse": (-6.8, 1.5),
    "log_noise_fine": (-5.7, 1.4),
    "log_noise_mid": (-5.6, 1.4),
    "luma_mean": (0.42, 0.15),
    "luma_std": (0.17, 0.077),
    "luma_p01": (0.07, 0.11),
    "luma_p05": (0.14, 0.14),
    "luma_p25": (0.3, 0.16),
    "luma_p50": (0.43, 0.16),
    "luma_p75": (0.55, 0.2),
    "luma_p95": (0.68, 0.22),
    "luma_p99": (0.78, 0.2),
    "share_black": (0.027, 0.039),
    "share_white": (0.0075, 0.026),
    "share_channel_clipped": (0.14, 0.24),
    "luma_entropy": (0.82, 0.12),
    "sat_mean": (0.52, 0.24),
    "sat_std": (0.2, 0.086),
    "sat_p95": (0.77, 0.23),
    "colourfulness": (0.28, 0.19),
    "mean_rg": (0.16, 0.2),
    "mean_yb": (0.13, 0.17),
    "local_contrast": (0.035, 0.022),
    "centre_minus_border_luma": (0.052, 0.095),
    "line_coherence_2": (0.2, 0.19),
    "line_tilt_2": (0.46, 0.32),
    "line_coherence_4": (0.19, 0.19),
    "line_tilt_4": (0.36, 0.36),
    "share_axis_aligned": (0.086, 0.092),
    "share_near_axis": (0.11, 0.061),
    "edge_density": (0.14, 0.15),
    "edge_density_centre": (0.15, 0.16),
    "edge_density_border": (0.14, 0.14),
    "orientation_entropy": (0.94, 0.11),
    "log_centre_border_sharpness": (-0.19, 0.74),
    "log_max_cell_sharpness": (0.73, 0.52),
    "log_min_cell_sharpness": (-0.98, 0.69),
    "cell_sharpness_spread": (0.55, 0.33),
}
for _name in _LAYOUT:
    _NOMINAL[_name] = (0.47, 0.21) if "_L_" in _name else (0.1, 0.25)

NOMINAL_CENTER = np.array([_NOMINAL[name][0] for name in FEATURE_NAMES], dtype=np.float32)
NOMINAL_SCALE = np.array([_NOMINAL[name][1] for name in FEATURE_NAMES], dtype=np.float32)

_EPS = 1e-6


class FeatureError(ValueError):
    """An input that is not a readable image; the message names it."""


def extract(image: Any) -> np.ndarray:
    """The feature vector (float32, shape (DIM,)) of one image: a path, the file's bytes, or a PIL image.

    Raises FeatureError naming the image when it cannot be read."""
    decoded = _load_image(image)
    return _features(decoded)


def extract_many(
    images: Sequence[Any],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Features of many images, float32 (N, DIM), in input order.

    Threads, not processes: decoding and numpy release the GIL, and a Celery prefork worker (a daemon
    process) may not start child processes. ``workers`` defaults to min(4, CPUs); 1 runs inline.
    ``progress`` is called with 1 after each image (e.g. ``tqdm.update``). The first unreadable image
    raises FeatureError naming it."""
    count = len(images)
    out = np.empty((count, DIM), dtype=np.float32)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or count < 2:
        for index, image in enumerate(images):
            out[index] = extract(image)
            if progress is not None:
                progress(1)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, vector in enumerate(pool.map(extract, images)):
            out[index] = vector
            if progress is not None:
                progress(1)
    return out


# --- decoding -----------------------------------------------------------------------------------------


class _Decoded:
    __slots__ = ("rgb", "original_size", "is_jpeg", "quant", "file_bytes", "block_period")

    def __init__(
        self,
        rgb: Image.Image,
        original_size: tuple[int, int],
        is_jpeg: bool,
        quant: float,
        file_bytes: int | None,
        block_period: float,
    ) -> None:
        self.rgb = rgb  # upright RGB, longest side <= _FINE_MAX
        self.original_size = original_size  # upright (width, height) of the full image
        self.is_jpeg = is_jpeg
        self.quant = quant  # mean luma quantisation step, 1.0 when unknown or not a JPEG
        self.file_bytes = file_bytes
        self.block_period = block_period  # JPEG block size in pixels of `rgb` (0 when there is no grid)


def _describe(image: Any) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"<{len(image)} bytes>"
    return f"<{type(image).__name__}>"


def _load_image(image: Any) -> _Decoded:
    """Decode ``image`` upright and reduced (DCT-scaled for JPEG files). Internal shape; use extract()."""
    try:
        if isinstance(image, Image.Image):
            # No draft: it would change the caller's image object.
            return _prepare(image, file_bytes=None, draft=False)
        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            with Image.open(io.BytesIO(data)) as im:
                return _prepare(im, file_bytes=len(data))
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            with Image.open(path) as im:
                return _prepare(im, file_bytes=path.stat().st_size)
    except FeatureError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FeatureError(f"{_describe(image)}: cannot read the image: {exc}") from exc
    raise FeatureError(f"{_describe(image)}: expected a path, bytes or a PIL image")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF: metadata never stops scoring
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _prepare(im: Image.Image, *, file_bytes: int | None, draft: bool = True) -> _Decoded:
    stored_size = im.size
    if stored_size[0] < 1 or stored_size[1] < 1:
        raise FeatureError("empty image")
    orientation = _orientation(im)
    is_jpeg = im.format in ("JPEG", "MPO")
    quant = 1.0
    tables = getattr(im, "quantization", None)
    if is_jpeg and tables:
        first = tables.get(0) if isinstance(tables, dict) else None
        if first is not None and len(first):
            quant = float(np.mean(first))
    block_period = 8.0 if is_jpeg else 0.0
    if draft and is_jpeg and isinstance(im, ImageFile.ImageFile) and im.tile and max(stored_size) > _DRAFT_SIDE:
        scale = _DRAFT_SIDE / max(stored_size)
        im.draft("RGB", (max(1, math.ceil(stored_size[0] * scale)), max(1, math.ceil(stored_size[1] * scale))))
        block_period = 8.0 * im.size[0] / stored_size[0]
    im.load()
    rgb = _to_rgb(im)
    if max(rgb.size) > _FINE_MAX:
        rgb = _resize_longest(rgb, _FINE_MAX)
        block_period = 0.0  # a resampled grid no longer lines up with pixels
    for step in _TRANSPOSE_FOR_ORIENTATION.get(orientation, ()):
        rgb = rgb.transpose(step)
    # Orientations 5-8 swap the axes; the block grid is square, so its period is unchanged.
    width, height = stored_size if orientation < 5 else stored_size[::-1]
    return _Decoded(rgb, (width, height), is_jpeg, quant, file_bytes, block_period)


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        # 16-bit (and 32-bit) greyscale: Pillow's own conversion clips at 255, which would read as white.
        values = np.asarray(im, dtype=np.float64)
        top = 65535.0 if values.max(initial=0.0) > 255.0 else 255.0
        im = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels count as white, as the platform's import shows them.
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return im.convert("RGB")


def _resize_longest(im: Image.Image, longest: int) -> Image.Image:
    if max(im.size) <= longest:
        return im
    scale = longest / max(im.size)
    size = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
    # reducing_gap: an integer box reduction first, then a short bilinear step (much faster, same look).
    return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _reduce_towards(im: Image.Image, longest: int) -> Image.Image:
    """Box-reduce by the integer factor that brings the longest side closest to ``longest``: several times
    faster than resampling to an exact size, and within a factor 1.5 of it."""
    factor = max(1, round(max(im.size) / longest))
    return im.reduce(factor) if factor > 1 else im


# --- features -----------------------------------------------------------------------------------------


def _luma(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float32) * (1.0 / 255.0)


def _log(value: float) -> float:
    return math.log(max(float(value), 0.0) + _EPS)


def _laplacian(y: np.ndarray) -> np.ndarray:
    # In place on one buffer: these arrays are up to a million pixels and memory traffic is the cost.
    lap = y[1:-1, 1:-1] * 4.0
    lap -= y[:-2, 1:-1]
    lap -= y[2:, 1:-1]
    lap -= y[1:-1, :-2]
    lap -= y[1:-1, 2:]
    return lap


def _gradients(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central differences gx, gy and the energy gx^2 + gy^2, on the interior (H-2, W-2)."""
    gx = y[1:-1, 2:] - y[1:-1, :-2]
    gx *= 0.5
    gy = y[2:, 1:-1] - y[:-2, 1:-1]
    gy *= 0.5
    energy = gx * gx
    energy += gy * gy
    return gx, gy, energy


def _block_means(array: np.ndarray, size: int) -> np.ndarray:
    """Means over size x size blocks (edges trimmed), without copying the full array."""
    rows, cols = array.shape[0] // size, array.shape[1] // size
    if rows == 0 or cols == 0:
        return np.array([[float(array.mean())]], dtype=np.float64)
    banded = array[: rows * size].reshape(rows, size, array.shape[1]).sum(axis=1, dtype=np.float64)
    return banded[:, : cols * size].reshape(rows, cols, size).sum(axis=2) / (size * size)


def _sharpness_and_noise(y: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, float]:
    """(Laplacian variance, mean gradient energy, gx, gy, energy, noise sigma) of luma ``y``.

    Noise: in flat areas the Laplacian is mostly noise, and white noise of sigma s gives a 4-neighbour
    Laplacian of standard deviation s * sqrt(20). Taking the flattest half of 8x8 blocks (by gradient
    energy) keeps edges and texture out of the estimate."""
    lap = _laplacian(y)
    lap_mean = float(lap.mean())
    squared = np.square(lap, out=lap)
    lap_var = float(squared.mean()) - lap_mean * lap_mean
    gx, gy, energy = _gradients(y)
    block_lap = _block_means(squared, 8).ravel()
    block_energy = _block_means(energy, 8).ravel()
    flat = block_energy <= np.median(block_energy)
    noise = math.sqrt(max(float(block_lap[flat].mean()), 0.0) / 20.0)
    return lap_var, float(energy.mean()), gx, gy, energy, noise


def _quantile(values: np.ndarray, q: float | Sequence[float]) -> Any:
    # A strided sample keeps percentiles cheap on a million pixels; it is deterministic.
    flat = values.ravel()
    step = max(1, flat.size // 65536)
    return np.quantile(flat[::step], q)


def _blockiness(y: np.ndarray, period: float) -> float:
    """log(mean step across JPEG block boundaries / mean step inside blocks), 0 when there is no grid."""
    p = int(round(period))
    if p < 2 or abs(period - p) > 1e-6 or min(y.shape) < 4 * p:
        return 0.0
    ratios = []
    # Every 4th line across the boundaries is plenty of samples and a quarter of the work.
    for axis, sample in ((0, y[:, ::4]), (1, y[::4])):
        steps = np.abs(np.diff(sample, axis=axis))  # steps[i] is between pixels i and i+1 along the axis
        across = steps[p - 1 :: p] if axis == 0 else steps[:, p - 1 :: p]
        total, boundary = float(steps.sum(dtype=np.float64)), float(across.sum(dtype=np.float64))
        inside_count = steps.size - across.size
        ratios.append((boundary / across.size + 1e-4) / ((total - boundary) / inside_count + 1e-4))
    return math.log(sum(ratios) / 2.0)


def _cells(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of array over a rows x cols grid (edges trimmed to a multiple)."""
    h, w = array.shape[:2]
    ch, cw = h // rows, w // cols
    trimmed = array[: ch * rows, : cw * cols]
    return trimmed.reshape(rows, ch, cols, cw, *array.shape[2:]).mean(axis=(1, 3))


def _centre_mask(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return mask


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0,1] (..., 3) to CIE Lab (D65), L in [0,100]."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab_l = 116.0 * f[..., 1] - 16.0
    lab_a = 500.0 * (f[..., 0] - f[..., 1])
    lab_b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lab_l, lab_a, lab_b], axis=-1)


def _features(decoded: _Decoded) -> np.ndarray:
    values: dict[str, float] = {}
    width, height = decoded.original_size
    values["log_aspect"] = math.log(width / height)
    values["log_megapixels"] = math.log(width * height / 1e6)

    values["is_jpeg"] = 1.0 if decoded.is_jpeg else 0.0
    values["log_jpeg_quant"] = math.log(decoded.quant)
    bits = 0.0 if decoded.file_bytes is None else decoded.file_bytes * 8.0 / (width * height)
    values["log1p_bits_per_pixel"] = math.log1p(bits)

    fine_rgb = decoded.rgb
    mid_rgb = _reduce_towards(fine_rgb, _MID)
    coarse_rgb = _reduce_towards(mid_rgb, _COARSE)

    # Fine scale: sharpness, noise and blocks, which DCT scaling keeps but further resampling washes out.
    y_fine = _luma(fine_rgb)
    if min(y_fine.shape) < 8:
        raise FeatureError(f"image too small to score ({width}x{height})")
    values["blockiness"] = _blockiness(y_fine, decoded.block_period)
    lap_var, energy_mean, _, _, energy_fine, noise = _sharpness_and_noise(y_fine)
    values["log_lap_var_fine"] = _log(lap_var)
    values["log_grad_energy_fine"] = _log(energy_mean)
    values["log_grad_p99_fine"] = _log(math.sqrt(float(_quantile(energy_fine, 0.99))))
    values["log_noise_fine"] = _log(noise)
    del energy_fine

    y_mid = _luma(mid_rgb)
    lap_var, energy_mean, gx, gy, energy_mid, noise = _sharpness_and_noise(y_mid)
    values["log_lap_var_mid"] = _log(lap_var)
    values["log_grad_energy_mid"] = _log(energy_mean)
    values["log_noise_mid"] = _log(noise)

    y_coarse = _luma(coarse_rgb)
    values["log_lap_var_coarse"] = _log(_laplacian(y_coarse).var())
    values["log_grad_energy_coarse"] = _log(float(_gradients(y_coarse)[2].mean()))

    # Exposure: the luminance histogram of the coarse copy (plenty of pixels for shares and percentiles).
    rgb_coarse = np.asarray(coarse_rgb, dtype=np.float32) * (1.0 / 255.0)
    percentiles = np.quantile(y_coarse, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    values["luma_mean"] = float(y_coarse.mean())
    values["luma_std"] = float(y_coarse.std())
    for name, value in zip(("p01", "p05", "p25", "p50", "p75", "p95", "p99"), percentiles):
        values[f"luma_{name}"] = float(value)
    values["share_black"] = float((y_coarse <= 2.5 / 255).mean())
    values["share_white"] = float((y_coarse >= 252.5 / 255).mean())
    r, g, b = rgb_coarse[..., 0], rgb_coarse[..., 1], rgb_coarse[..., 2]
    # Elementwise over the three planes: numpy reduces a trailing axis of length 3 slowly.
    maximum = np.maximum(np.maximum(r, g), b)
    minimum = np.minimum(np.minimum(r, g), b)
    values["share_channel_clipped"] = float(((maximum >= 254.5 / 255) | (minimum <= 0.5 / 255)).mean())
    histogram = np.bincount(np.minimum((y_coarse * 64).astype(np.int64), 63).ravel(), minlength=64).astype(np.float64)
    histogram /= histogram.sum()
    nonzero = histogram[histogram > 0]
    values["luma_entropy"] = float(-(nonzero * np.log(nonzero)).sum() / math.log(64))

    # Colour: HSV saturation and Hasler & Süsstrunk's colourfulness (2003), on a 0..1 scale.
    saturation = np.where(maximum > 1e-3, (maximum - minimum) / np.maximum(maximum, 1e-3), 0.0)
    values["sat_mean"] = float(saturation.mean())
    values["sat_std"] = float(saturation.std())
    values["sat_p95"] = float(np.quantile(saturation, 0.95))
    rg = r - g
    yb = 0.5 * (r + g) - b
    values["colourfulness"] = float(
        math.sqrt(rg.var() + yb.var()) + 0.3 * math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
    )
    values["mean_rg"] = float(rg.mean())
    values["mean_yb"] = float(yb.mean())

    # Contrast: local (8x8 blocks of the mid copy) and centre against border brightness.
    h8, w8 = (y_mid.shape[0] // 8) * 8, (y_mid.shape[1] // 8) * 8
    blocks = y_mid[:h8, :w8].reshape(h8 // 8, 8, w8 // 8, 8)
    values["local_contrast"] = float(blocks.std(axis=(1, 3)).mean()) if h8 and w8 else 0.0
    centre_coarse = _centre_mask(y_coarse.shape)
    values["centre_minus_border_luma"] = float(y_coarse[centre_coarse].mean() - y_coarse[~centre_coarse].mean())

    # Lines: orientation statistics of the strongest edges of the mid copy. A level horizon or upright
    # verticals put the edge energy at 0/90 degrees; a tilted camera turns it off the axes.
    magnitude = np.sqrt(energy_mid)
    strong = magnitude >= max(float(_quantile(magnitude, 0.9)), 0.02)
    sx, sy, weight = gx[strong], gy[strong], magnitude[strong]
    total = float(weight.sum())
    if total > 0 and sx.size >= 16:
        cos2 = (sx * sx - sy * sy) / np.maximum(weight * weight, 1e-12)
        sin2 = 2.0 * sx * sy / np.maximum(weight * weight, 1e-12)
        c2, s2 = float((weight * cos2).sum() / total), float((weight * sin2).sum() / total)
        cos4, sin4 = cos2 * cos2 - sin2 * sin2, 2.0 * sin2 * cos2
        c4, s4 = float((weight * cos4).sum() / total), float((weight * sin4).sum() / total)
        values["line_coherence_2"] = math.hypot(c2, s2)
        # Dominant doubled angle off the nearest axis, as a share of the largest possible (45 degrees).
        angle2 = math.degrees(math.atan2(s2, c2)) / 2.0  # in (-90, 90]
        values["line_tilt_2"] = min(abs(angle2), 90.0 - abs(angle2)) / 45.0
        angle4 = math.degrees(math.atan2(s4, c4)) / 4.0  # in (-45, 45]
        values["line_tilt_4"] = abs(angle4) / 45.0
        values["line_coherence_4"] = math.hypot(c4, s4)
        theta = np.degrees(np.arctan2(sy, sx)) % 90.0
        off_axis = np.minimum(theta, 90.0 - theta)
        values["share_axis_aligned"] = float(weight[off_axis <= 1.5].sum() / total)
        values["share_near_axis"] = float(weight[(off_axis > 1.5) & (off_axis <= 6.0)].sum() / total)
        bins = np.minimum((np.degrees(np.arctan2(sy, sx)) % 180.0 / 180.0 * 18).astype(np.int64), 17)
        orient_hist = np.bincount(bins, weights=weight, minlength=18)
        orient_hist = orient_hist / orient_hist.sum()
        nz = orient_hist[orient_hist > 0]
        values["orientation_entropy"] = float(-(nz * np.log(nz)).sum() / math.log(18))
    else:
        for name in ("line_coherence_2", "line_coherence_4", "share_axis_aligned", "share_near_axis"):
            values[name] = 0.0
        values["line_tilt_2"] = values["line_tilt_4"] = 0.5
        values["orientation_entropy"] = 1.0

    # Clutter: how much of the frame is edges, overall, in the centre and in the border.
    edges = magnitude > 0.04
    centre_mid = _centre_mask(edges.shape)
    values["edge_density"] = float(edges.mean())
    values["edge_density_centre"] = float(edges[centre_mid].mean())
    values["edge_density_border"] = float(edges[~centre_mid].mean())

    # Subject against background: sharpness of the centre against the border, and of the sharpest and
    # softest of nine cells against the median cell (a sharp subject on a soft background spreads them).
    centre_energy = float(energy_mid[centre_mid].mean())
    border_energy = float(energy_mid[~centre_mid].mean())
    values["log_centre_border_sharpness"] = math.log((centre_energy + 1e-6) / (border_energy + 1e-6))
    cells = np.log(_cells(energy_mid, 3, 3).ravel() + 1e-6)
    median_cell = float(np.median(cells))
    values["log_max_cell_sharpness"] = float(cells.max()) - median_cell
    values["log_min_cell_sharpness"] = float(cells.min()) - median_cell
    values["cell_sharpness_spread"] = float(cells.std())

    # Colour layout: a 4x4 lightness thumbnail and 2x2 chroma, in Lab scaled to about unit range.
    lab = _srgb_to_lab(_cells(rgb_coarse.astype(np.float64), 4, 4))
    for row in range(4):
        for col in range(4):
            values[f"layout_L_{row}{col}"] = float(lab[row, col, 0] / 100.0)
    chroma = lab[..., 1:].reshape(2, 2, 2, 2, 2).mean(axis=(1, 3))
    for index, channel in enumerate("ab"):
        for row in range(2):
            for col in range(2):
                values[f"layout_{channel}_{row}{col}"] = float(chroma[row, col, index] / 100.0)

    vector = np.array([values[name] for name in FEATURE_NAMES], dtype=np.float32)
    if not np.all(np.isfinite(vector)):
        bad = [name for name, value in zip(FEATURE_NAMES, vector) if not math.isfinite(float(value))]
        raise FeatureError(f"non-finite features {bad}")
    return vector
