"""Small photos with known distortions and the labels a careful rater would give them.

Each photo is a distinct generated scene (tests/annotation_site/images/corpus.py) put through a blur
level, a brightness factor and a saturation factor; its labels follow those distortions on the RealQA
schema's fields: clarity from the blur, exposure from the brightness, saturation from the saturation
factor, and an overall quality score that falls with blur and with exposure error."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from tests.annotation_site.images.corpus import photo_pixels

BLUR_LEVELS = (0.0, 1.2, 3.0)  # Gaussian radius in pixels at 160x120
CLARITY_FOR_BLUR = ("excellent", "fair", "bad")


@dataclass(frozen=True)
class Sample:
    jpeg: bytes
    labels: dict
    blur: float
    brightness: float
    saturation: float


def quality_for(blur: float, brightness: float) -> float:
    return 8.5 - 1.6 * blur - 3.0 * abs(math.log(brightness))


def distorted_photo(index: int, *, seed: int = 0, width: int = 160, height: int = 120) -> Sample:
    rng = np.random.default_rng([seed, index])
    level = int(rng.integers(len(BLUR_LEVELS)))
    blur = BLUR_LEVELS[level]
    brightness = float(np.exp(rng.uniform(-1.0, 1.0)))
    saturation = float(rng.uniform(0.2, 2.0))
    image = photo_pixels(width, height, seed=10_000 * seed + index)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    image = ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(brightness)).enhance(saturation)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    log_brightness = math.log(brightness)
    quality = float(np.clip(quality_for(blur, brightness) + rng.normal(0, 0.2), 1.0, 10.0))
    labels = {
        "clarity": CLARITY_FOR_BLUR[level],
        "exposure": "under" if log_brightness < -0.35 else "over" if log_brightness > 0.35 else "well",
        "saturation": "under" if saturation < 0.6 else "over" if saturation > 1.5 else "natural",
        "quality": round(quality, 1),
    }
    return Sample(buffer.getvalue(), labels, blur, brightness, saturation)


def distorted_photos(count: int, *, seed: int = 0) -> list[Sample]:
    return [distorted_photo(index, seed=seed) for index in range(count)]


def unlike_training_photos() -> list[Image.Image]:
    """Pictures nothing like the generated scenes: real photographs and pure noise."""
    from skimage import data

    pictures = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "moon", "hubble_deep_field", "checkerboard"):
        array = np.asarray(getattr(data, name)())
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        pictures.append(Image.fromarray(array[..., :3].astype(np.uint8)))
    for seed in range(4):
        noise = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
        pictures.append(Image.fromarray(noise))
    return pictures
