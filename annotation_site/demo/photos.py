"""Build the demo photos: scikit-image sample photos with graded distortions of known severity.

The recipe (which sources, which distortions at which levels) is data, in
`fixtures/demo_photos.json`; this module only knows how to carry it out. It is pure on purpose
(Pillow, numpy, scipy and scikit-image only, no Django), so `make demo`, the tests and the
simulated-rater benchmarks can all build the same photos without a configured project.

Everything is deterministic: the sources ship inside the scikit-image wheel (nothing downloads),
noise comes from an RNG seeded by the recipe and the photo's identity, and Pillow's JPEG encoder
gives the same bytes for the same pixels. The same recipe therefore gives byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_RECIPE_PATH",
    "DemoPhoto",
    "apply_distortion",
    "build_demo_photos",
    "load_recipe",
    "load_source",
    "plan_demo_photos",
]

DEFAULT_RECIPE_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "demo_photos.json"
CSV_NAME = "demo_photos.csv"
CSV_COLUMNS = ("filename", "source", "distortion", "level", "severity", "exif_orientation")
PRISTINE = "pristine"

# skimage.data loaders whose image file is inside the wheel. Anything else (e.g. `download_all`, or a
# loader for a file that is only fetched on demand) would need the network, so the recipe may not name it.
_OFFLINE_SOURCES = frozenset(
    {
        "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins",
        "colorwheel", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page",
        "retina", "rocket", "text",
    }
)  # fmt: skip

# The operations a recipe distortion may use, with the parameters each one needs.
_OPS: dict[str, frozenset[str]] = {
    "gaussian_blur": frozenset({"sigma"}),
    "gaussian_noise": frozenset({"sigma"}),
    "jpeg": frozenset({"quality"}),
    "exposure": frozenset({"gain", "gamma"}),
    "saturation": frozenset({"factor"}),
    "tilt": frozenset({"degrees"}),
    "crop": frozenset({"keep", "anchor"}),
}

# Orientation tag -> how to turn the upright pixels into the stored ones. Tag 6 means "rotate 90°
# clockwise to view", so the stored pixels are the upright ones turned 90° counter-clockwise (which is
# Pillow's ROTATE_90); tag 8 is the opposite. That is how a phone held sideways stores its photo.
_STORE_ROTATED = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class DemoPhoto:
    filename: str
    source: str
    distortion: str  # "pristine" for the level-0 reference of a source
    level: int  # 0 = pristine reference; within a distortion a higher level is always worse
    severity: float  # 0..1 true degradation, for later simulation benchmarks
    exif_orientation: int = 1  # 1 = pixels stored upright (no tag written); 6 or 8 = stored sideways and tagged


def load_recipe(path: Path | None = None) -> dict:
    """Read and check a recipe; the default is the one `make demo` uses."""
    recipe = json.loads(Path(path or DEFAULT_RECIPE_PATH).read_text(encoding="utf-8"))
    _check_recipe(recipe)
    return recipe


def plan_demo_photos(recipe: dict | None = None) -> list[DemoPhoto]:
    """The photos a recipe makes, in build order, without touching any pixels.

    Order: per source, its pristine reference, then each distortion of the recipe that lists the source,
    levels ascending. Callers that need the ground truth (benchmarks, the CSV) can use this cheaply.
    """
    recipe = load_recipe() if recipe is None else recipe
    _check_recipe(recipe)
    photos: list[DemoPhoto] = []
    for source in recipe["sources"]:
        name = source["name"]
        photos.append(
            DemoPhoto(_filename(name, PRISTINE, 0), name, PRISTINE, 0, 0.0, int(source.get("exif_orientation", 1)))
        )
        for distortion in recipe["distortions"]:
            if name not in distortion["sources"]:
                continue
            for level in distortion["levels"]:
                photos.append(
                    DemoPhoto(
                        _filename(name, distortion["name"], level["level"]),
                        name,
                        distortion["name"],
                        int(level["level"]),
                        float(level["severity"]),
                    )
                )
    return photos


def build_demo_photos(out_dir: Path, *, recipe: dict | None = None, progress: bool = False) -> list[DemoPhoto]:
    """Write the recipe's photos as JPEG files plus `demo_photos.csv` (the ground truth) into out_dir.

    Idempotent: a file that already holds the same bytes is not rewritten, so re-running `make demo`
    leaves timestamps alone and a half-finished build just completes. Files in out_dir that the recipe
    does not name are left alone (they may be someone else's).
    """
    recipe = load_recipe() if recipe is None else recipe
    plan = plan_demo_photos(recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = recipe["output"]
    distortions = {d["name"]: d for d in recipe["distortions"]}
    references: dict[str, Image.Image] = {}  # each source is loaded and resized once, not once per photo

    for photo in _progress(plan, progress):
        if photo.source not in references:
            references[photo.source] = _reference(photo.source, output)
        reference = references[photo.source]
        quality = int(output["quality"])
        subsampling = output["subsampling"]
        exif = None
        if photo.distortion == PRISTINE:
            image = reference
            if photo.exif_orientation != 1:
                image = image.transpose(_STORE_ROTATED[photo.exif_orientation])
                exif = Image.Exif()
                exif[_EXIF_ORIENTATION_TAG] = photo.exif_orientation
        else:
            distortion = distortions[photo.distortion]
            params = _level(distortion, photo.level)["params"]
            rng = np.random.default_rng(_seed(recipe["seed"], photo.source, photo.distortion, photo.level))
            image = apply_distortion(reference, distortion["op"], params, rng)
            if distortion["op"] == "jpeg":
                # The distortion *is* the encoding: encode once, at the level's quality, like a camera would.
                quality = int(params["quality"])
                subsampling = params.get("subsampling", "4:2:0")
        _write_if_changed(out_dir / photo.filename, _encode_jpeg(image, quality, subsampling, exif))

    _write_if_changed(out_dir / CSV_NAME, _csv_bytes(plan))
    return plan


def load_source(name: str) -> np.ndarray:
    """A scikit-image sample photo as an RGB uint8 array; only loaders whose file ships in the wheel."""
    if name not in _OFFLINE_SOURCES:
        raise ValueError(f"{name!r} is not a scikit-image sample photo that ships offline")
    from skimage import data  # imported late: scikit-image is slow to import and only the build needs it

    array = np.asarray(getattr(data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name} returned {array.dtype}, expected uint8")
    if array.ndim == 2:  # grayscale sources (camera, coins, ...) become RGB so every photo is a normal colour JPEG
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])  # drop an alpha channel if there is one


def apply_distortion(image: Image.Image, op: str, params: dict[str, Any], rng: np.random.Generator) -> Image.Image:
    """One distortion of the recipe applied to an RGB image; the result has the same size.

    The jpeg op returns the pixels unchanged: its damage is done by encoding at params["quality"].
    """
    if op == "jpeg":
        return image
    if op == "tilt":
        return _tilt(image, float(params["degrees"]))
    if op == "crop":
        return _crop(image, float(params["keep"]), tuple(params["anchor"]))
    pixels = np.asarray(image, dtype=np.float64)
    if op == "gaussian_blur":
        sigma = float(params["sigma"])
        # sigma 0 on the channel axis: blur in space only, never mix colours
        pixels = ndimage.gaussian_filter(pixels, sigma=(sigma, sigma, 0), mode="reflect")
    elif op == "gaussian_noise":
        pixels = pixels + rng.normal(0.0, float(params["sigma"]), pixels.shape)
    elif op == "exposure":
        # gain scales the highlights (clipping them when > 1), gamma bends the mid-tones; together they
        # read as an under- or over-exposed shot rather than a plain brightness slider.
        unit = pixels / 255.0
        pixels = 255.0 * np.clip(float(params["gain"]) * unit ** float(params["gamma"]), 0.0, 1.0)
    elif op == "saturation":
        # Same luma weights as Pillow's ImageEnhance.Color: factor 0 is grey, 1 the original.
        luma = pixels @ np.array([0.299, 0.587, 0.114])
        pixels = luma[:, :, None] + float(params["factor"]) * (pixels - luma[:, :, None])
    else:
        raise ValueError(f"unknown distortion op {op!r}")
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------------
# Helpers


def _reference(name: str, output: dict[str, Any]) -> Image.Image:
    """The pristine reference: the source resized so its long side is output["long_side"]."""
    image = Image.fromarray(load_source(name), "RGB")
    long_side = int(output["long_side"])
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    # LANCZOS keeps upscaled sources crisp enough to pass for photos instead of blurry thumbnails.
    return image.resize(size, Image.Resampling[output.get("resample", "LANCZOS").upper()])


def _tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate, then cut away the corners the rotation exposed and scale back: it reads as a tilted shot
    rather than a rotated picture with black wedges."""
    width, height = image.size
    rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    # Largest centred rectangle of the same aspect ratio inside the rotated frame: each corner of
    # (k*w, k*h), turned back by the angle, must stay inside the original w x h.
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    k = min(width / (width * cos + height * sin), height / (width * sin + height * cos))
    # 2 px margin: bicubic smears the fill colour a pixel or so inwards along the rotated edge.
    inner_w, inner_h = math.floor(k * width) - 4, math.floor(k * height) - 4
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    cropped = rotated.crop((left, top, left + inner_w, top + inner_h))
    return cropped.resize((width, height), Image.Resampling.LANCZOS)


def _crop(image: Image.Image, keep: float, anchor: tuple[float, float]) -> Image.Image:
    """Keep a `keep` fraction of each side, pushed towards `anchor` (0..1 per axis), so the subject,
    usually near the centre, ends up cut by the frame; scaled back so the size gives nothing away."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"crop keep must be in (0, 1], got {keep}")
    width, height = image.size
    inner_w, inner_h = round(width * keep), round(height * keep)
    left = round(float(anchor[0]) * (width - inner_w))
    top = round(float(anchor[1]) * (height - inner_h))
    cropped = image.crop((left, top, left + inner_w, top + inner_h))
    return cropped.resize((width, height), Image.Resampling.LANCZOS)


def _encode_jpeg(image: Image.Image, quality: int, subsampling: str, exif: Image.Exif | None) -> bytes:
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality, "subsampling": subsampling, "optimize": False}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def _csv_bytes(plan: Iterable[DemoPhoto]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # "\n", not csv's "\r\n": stable, diff-friendly bytes
    writer.writerow(CSV_COLUMNS)
    for photo in plan:
        writer.writerow(
            [photo.filename, photo.source, photo.distortion, photo.level, f"{photo.severity:g}", photo.exif_orientation]
        )
    return buffer.getvalue().encode("utf-8")


def _write_if_changed(path: Path, content: bytes) -> bool:
    """Write atomically unless the file already holds exactly these bytes; True when written."""
    try:
        if path.stat().st_size == len(content) and path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)  # a reader never sees half a JPEG, even if the build is interrupted
    return True


def _filename(source: str, distortion: str, level: int) -> str:
    # Opaque on purpose: the platform shows original file names, and "astronaut__blur_4.jpg" would tell
    # raters the answer. The digest is stable, so the same photo keeps its name across builds; the CSV
    # maps names back to the ground truth.
    digest = hashlib.sha256(f"{source}/{distortion}/{level}".encode()).hexdigest()[:12]
    return f"demo-{digest}.jpg"


def _seed(base: int, source: str, distortion: str, level: int) -> list[int]:
    # crc32 rather than hash(): str hashes are salted per process, which would break determinism.
    return [int(base), zlib.crc32(source.encode()), zlib.crc32(distortion.encode()), int(level)]


def _level(distortion: dict[str, Any], level: int) -> dict[str, Any]:
    return next(entry for entry in distortion["levels"] if entry["level"] == level)


def _progress(plan: list[DemoPhoto], enabled: bool) -> Iterable[DemoPhoto]:
    if not enabled:
        return plan
    from tqdm import tqdm

    return tqdm(plan, desc="demo photos", unit="photo")


def _check_recipe(recipe: dict) -> None:
    """Fail early with a clear message instead of half-way through a build."""

    def fail(message: str) -> None:
        raise ValueError(f"demo photo recipe: {message}")

    for key in ("seed", "output", "sources", "distortions"):
        if key not in recipe:
            fail(f"missing {key!r}")
    for key in ("long_side", "quality", "subsampling"):
        if key not in recipe["output"]:
            fail(f"output is missing {key!r}")
    names = [source["name"] for source in recipe["sources"]]
    if len(set(names)) != len(names):
        fail("a source is listed twice")
    for source in recipe["sources"]:
        if source["name"] not in _OFFLINE_SOURCES:
            fail(f"source {source['name']!r} is not a scikit-image sample photo that ships offline")
        if int(source.get("exif_orientation", 1)) not in (1, *_STORE_ROTATED):
            fail(f"source {source['name']!r}: exif_orientation must be 1, 6 or 8")
    seen: set[str] = {PRISTINE}
    for distortion in recipe["distortions"]:
        name = distortion.get("name")
        if not name or name in seen:
            fail(f"distortion name {name!r} is missing, reserved or used twice")
        seen.add(name)
        if distortion.get("op") not in _OPS:
            fail(f"distortion {name!r}: unknown op {distortion.get('op')!r}")
        unknown = set(distortion["sources"]) - set(names)
        if unknown:
            fail(f"distortion {name!r} names sources that are not in the recipe: {sorted(unknown)}")
        levels = distortion["levels"]
        if [entry["level"] for entry in levels] != list(range(1, len(levels) + 1)):
            fail(f"distortion {name!r}: levels must be 1, 2, 3, ... in order")
        severities = [float(entry["severity"]) for entry in levels]
        if not all(0.0 < s <= 1.0 for s in severities) or severities != sorted(set(severities)):
            fail(f"distortion {name!r}: severities must be in (0, 1] and strictly increase with the level")
        for entry in levels:
            missing = _OPS[distortion["op"]] - set(entry.get("params", {}))
            if missing:
                fail(f"distortion {name!r} level {entry['level']}: missing params {sorted(missing)}")
