"""Hand-crafted image features: deterministic, and moving the way the distortions raters judge move them."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from realqa_model import features
from tests.annotation_site.images.corpus import photo_jpeg, photo_pixels


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[features.FEATURE_NAMES.index(name)])


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return photo_pixels(480, 360, seed=3)


def test_a_photo_gives_the_same_finite_vector_every_time_and_from_every_kind_of_input(tmp_path, photo) -> None:
    data = jpeg(photo)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)

    first = features.extract(data)

    assert first.dtype == np.float32
    assert first.shape == (features.DIM,) == (len(features.FEATURE_NAMES),)
    assert 40 <= features.DIM <= 80
    assert np.isfinite(first).all()
    assert np.array_equal(first, features.extract(data))
    assert np.array_equal(first, features.extract(str(path)))
    assert np.array_equal(first, features.extract(path))
    # A PIL image has no file behind it: only the file-level figures (bits per pixel) may differ.
    from_pil = features.extract(Image.open(io.BytesIO(data)))
    same = [i for i, name in enumerate(features.FEATURE_NAMES) if name != "log1p_bits_per_pixel"]
    assert np.array_equal(first[same], from_pil[same])


def test_many_images_in_threads_give_the_same_rows_as_one_at_a_time() -> None:
    images = [photo_jpeg(width=200, height=150, seed=seed) for seed in range(6)]
    ticks: list[int] = []

    together = features.extract_many(images, workers=3, progress=ticks.append)

    assert together.shape == (6, features.DIM)
    assert np.array_equal(together, np.stack([features.extract(image) for image in images]))
    assert sum(ticks) == 6


def test_a_blurred_copy_is_less_sharp_at_every_scale(photo) -> None:
    sharp = features.extract(jpeg(photo))
    blurred = features.extract(jpeg(photo.filter(ImageFilter.GaussianBlur(2.5))))

    for name in (
        "log_lap_var_fine",
        "log_grad_energy_fine",
        "log_lap_var_mid",
        "log_grad_energy_coarse",
        "log_grad_p99_fine",
    ):
        assert feature(blurred, name) < feature(sharp, name) - 0.3, name


def test_a_darker_copy_has_a_lower_exposure_and_more_crushed_shadows(photo) -> None:
    normal = features.extract(jpeg(photo))
    dark = features.extract(jpeg(ImageEnhance.Brightness(photo).enhance(0.35)))

    assert feature(dark, "luma_mean") < feature(normal, "luma_mean") - 0.15
    assert feature(dark, "luma_p95") < feature(normal, "luma_p95")
    assert feature(dark, "share_black") >= feature(normal, "share_black")


def test_a_brighter_copy_has_more_blown_highlights(photo) -> None:
    normal = features.extract(jpeg(photo))
    bright = features.extract(jpeg(ImageEnhance.Brightness(photo).enhance(2.2)))

    assert feature(bright, "luma_mean") > feature(normal, "luma_mean") + 0.15
    assert feature(bright, "share_white") > feature(normal, "share_white") + 0.05


def test_a_desaturated_copy_is_less_colourful(photo) -> None:
    normal = features.extract(jpeg(photo))
    grey = features.extract(jpeg(ImageEnhance.Color(photo).enhance(0.15)))

    assert feature(grey, "colourfulness") < 0.5 * feature(normal, "colourfulness")
    assert feature(grey, "sat_mean") < 0.5 * feature(normal, "sat_mean")


def test_a_noisy_copy_has_a_higher_noise_estimate(photo) -> None:
    pixels = np.asarray(photo, dtype=np.float32)
    noise = np.random.default_rng(0).normal(0, 12, pixels.shape)
    noisy = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))

    assert (
        feature(features.extract(jpeg(noisy)), "log_noise_fine")
        > feature(features.extract(jpeg(photo)), "log_noise_fine") + 0.5
    )


def test_heavy_jpeg_compression_shows_in_the_quantisation_and_the_block_edges(photo) -> None:
    fine = features.extract(jpeg(photo, quality=95))
    blocky = features.extract(jpeg(photo.filter(ImageFilter.GaussianBlur(1.0)), quality=8))

    assert feature(blocky, "log_jpeg_quant") > feature(fine, "log_jpeg_quant") + 1.0
    assert feature(blocky, "blockiness") > feature(fine, "blockiness") + 0.2
    assert feature(features.extract(Image.open(io.BytesIO(jpeg(photo))).convert("RGB")), "is_jpeg") == 0.0


def horizon(tilt_degrees: float) -> Image.Image:
    """A seascape: sky over sea, the horizon through the middle, turned by tilt_degrees and cropped."""
    big = Image.new("RGB", (900, 700), (150, 190, 235))
    ImageDraw.Draw(big).rectangle((0, 350, 900, 700), fill=(30, 70, 110))
    pixels = np.asarray(big, dtype=np.float32) + np.random.default_rng(1).normal(0, 3, (700, 900, 3))
    turned = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).rotate(
        tilt_degrees, resample=Image.Resampling.BICUBIC
    )
    return turned.crop((210, 170, 690, 530))


def test_a_tilted_horizon_turns_the_dominant_line_off_the_level() -> None:
    level = features.extract(jpeg(horizon(0)))
    tilted = features.extract(jpeg(horizon(6)))

    assert feature(level, "line_tilt_2") < 0.05
    assert feature(tilted, "line_tilt_2") > feature(level, "line_tilt_2") + 0.08
    assert feature(level, "share_axis_aligned") > feature(tilted, "share_axis_aligned") + 0.3


def test_a_sharp_subject_on_a_soft_background_is_sharper_in_the_centre(photo) -> None:
    soft = photo.filter(ImageFilter.GaussianBlur(3))
    subject = soft.copy()
    box = (photo.width // 4, photo.height // 4, 3 * photo.width // 4, 3 * photo.height // 4)
    subject.paste(photo.crop(box), box[:2])

    portrait = features.extract(jpeg(subject))
    flat = features.extract(jpeg(photo))

    assert feature(portrait, "log_centre_border_sharpness") > feature(flat, "log_centre_border_sharpness") + 1.0


def test_exif_orientation_is_applied_before_anything_is_measured() -> None:
    upright = features.extract(photo_jpeg(width=300, height=400, seed=5))
    stored_sideways = features.extract(photo_jpeg(width=300, height=400, seed=5, exif_orientation=6))

    assert feature(stored_sideways, "log_aspect") == pytest.approx(math.log(300 / 400))
    layout = [i for i, name in enumerate(features.FEATURE_NAMES) if name.startswith("layout_")]
    assert np.abs(upright[layout] - stored_sideways[layout]).max() < 0.02


def test_a_large_jpeg_is_measured_from_its_reduced_decode_with_the_full_size_recorded() -> None:
    big = photo_jpeg(width=1280, height=960, seed=9)

    vector = features.extract(big)

    assert feature(vector, "log_megapixels") == pytest.approx(math.log(1280 * 960 / 1e6), abs=1e-5)
    assert np.isfinite(vector).all()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (b"this is not an image", "cannot read the image"),
        (photo_jpeg(width=320, height=240)[:1500], "cannot read the image"),
        (Image.new("RGB", (5, 5)), "too small"),
        (12345, "expected a path, bytes or a PIL image"),
    ],
    ids=["text", "truncated-jpeg", "tiny", "wrong-type"],
)
def test_an_unreadable_input_is_refused_with_a_clear_error(image, expected) -> None:
    with pytest.raises(features.FeatureError, match=expected):
        features.extract(image)


def test_a_missing_file_is_named_in_the_error(tmp_path) -> None:
    with pytest.raises(features.FeatureError, match="nowhere.jpg"):
        features.extract(tmp_path / "nowhere.jpg")


def test_the_nominal_statistics_cover_every_feature() -> None:
    assert features.NOMINAL_CENTER.shape == features.NOMINAL_SCALE.shape == (features.DIM,)
    assert (features.NOMINAL_SCALE > 0).all()
    assert isinstance(features.FEATURES_VERSION, str) and features.FEATURES_VERSION


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: im.convert("L"),
        lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257),  # 16-bit greyscale
        lambda im: im.convert("RGBA"),
        lambda im: im.convert("CMYK"),
    ],
    ids=["grey", "16-bit", "rgba", "cmyk"],
)
def test_other_pixel_formats_are_measured_like_the_same_picture_in_8_bit_rgb(photo, convert) -> None:
    picture = convert(photo)
    grey_or_colour = photo.convert("L").convert("RGB") if picture.mode in ("L", "I;16", "I") else photo
    buffer = io.BytesIO()
    picture.save(buffer, "TIFF")

    vector = features.extract(buffer.getvalue())
    reference = features.extract(grey_or_colour)

    assert feature(vector, "luma_mean") == pytest.approx(feature(reference, "luma_mean"), abs=0.01)
    assert feature(vector, "log_lap_var_fine") == pytest.approx(feature(reference, "log_lap_var_fine"), abs=0.1)
