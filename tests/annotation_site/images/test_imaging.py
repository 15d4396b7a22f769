"""What an uploader notices about the ingestion path: which files get in, why the others don't,
and what the stored derivatives look like."""

from __future__ import annotations

import hashlib
import io
import pickle
import resource
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from annotation_site.images.imaging import (
    Derivative,
    ImageRejected,
    ImagingLimits,
    PreparedImage,
    hamming_distance,
    prepare_image,
)
from tests.annotation_site.images import corpus

TRUNCATED = "truncated image data (the file ends early)"


def decode(derivative: Derivative) -> Image.Image:
    image = Image.open(io.BytesIO(derivative.data))
    image.load()
    assert image.format == {"jpg": "JPEG", "png": "PNG"}[derivative.extension]
    assert image.size == (derivative.width, derivative.height)
    return image


def rejection(data: bytes, limits: ImagingLimits = ImagingLimits()) -> str:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data, limits=limits)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def is_red(pixel: tuple[int, ...]) -> bool:
    red, green, blue = pixel[:3]
    return red > 200 and green < 60 and blue < 60


# --- files that are refused, each with one reason naming the problem ---------------------------


def test_it_rejects_an_empty_file() -> None:
    assert rejection(corpus.zero_bytes()) == "empty file (0 bytes)"


def test_it_rejects_a_file_over_the_byte_limit_before_looking_inside() -> None:
    data = corpus.photo_jpeg()
    reason = rejection(data, ImagingLimits(max_bytes=10 * 1024))
    assert reason == f"file too large: {len(data) / 1024:.0f} KB exceeds the 10 KB limit"
    assert rejection(data + bytes(2 * 1024 * 1024), ImagingLimits(max_bytes=2 * 1024 * 1024)).endswith(
        " MB exceeds the 2.0 MB limit"
    )


def test_it_rejects_a_truncated_jpeg_with_a_reason() -> None:
    assert rejection(corpus.truncated_jpeg()) == TRUNCATED


def test_it_notices_truncation_even_when_decoding_at_reduced_scale() -> None:
    data = corpus.photo_jpeg(1600, 1200)
    assert rejection(data[: len(data) * 9 // 10]) == TRUNCATED


@pytest.mark.parametrize("format", ["PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF"])
def test_it_rejects_other_truncated_formats_as_truncated(format: str) -> None:
    data = corpus.photo_in_format(format)
    assert rejection(data[: len(data) // 2]) == TRUNCATED


def test_it_rejects_corrupt_compressed_data_quoting_the_decoder() -> None:
    assert rejection(corpus.corrupt_png()).startswith("corrupt image data: ")


def test_it_rejects_a_text_file_renamed_to_jpg() -> None:
    assert rejection(corpus.text_file_as_jpg()) == "text file, not an image"


def test_it_rejects_svg_because_it_can_carry_scripts() -> None:
    reason = rejection(corpus.svg_with_script())
    assert reason.startswith("SVG")
    assert "script" in reason


def test_it_rejects_an_html_page() -> None:
    assert rejection(corpus.html_page()) == "HTML document, not an image"


def test_it_rejects_a_pdf() -> None:
    assert rejection(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n") == "PDF document, not an image"


def test_it_says_when_a_file_starts_like_an_image_but_its_header_is_broken() -> None:
    data = bytearray(corpus.photo_in_format("PNG"))
    data[16:24] = b"\xff" * 8  # width and height in IHDR, which no longer match its checksum
    assert rejection(bytes(data)) == "corrupt or truncated PNG file: its header cannot be read"


def test_a_jpeg_cut_inside_its_header_is_reported_as_truncated() -> None:
    assert rejection(corpus.photo_jpeg()[:40]) == TRUNCATED


@pytest.mark.parametrize("format", ["PPM", "TGA", "PCX"])
def test_it_rejects_image_formats_outside_the_allowlist_by_name(format: str) -> None:
    assert rejection(corpus.photo_in_format(format)).startswith(f"unsupported image format {format} (accepted: JPEG")


@pytest.mark.parametrize(("format", "frames"), [("GIF", 12), ("PNG", 3), ("WEBP", 4)])
def test_it_rejects_animations_saying_how_many_frames(format: str, frames: int) -> None:
    reason = rejection(corpus.animated_image(format, frames))
    assert reason == f"animated {format} ({frames} frames): a quality label needs a still photo"


def test_it_rejects_a_decompression_bomb_without_decoding_it() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reason = rejection(corpus.decompression_bomb_png())  # 20000 x 20000: 400 MB once decoded
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert reason == "decompression bomb: 400.0 MP exceeds the 120.0 MP limit"
    assert grown_kib < 100 * 1024


def test_it_rejects_a_bomb_between_pillows_warning_and_error_thresholds_by_its_own_limit() -> None:
    reason = rejection(corpus.decompression_bomb_png(12000, 12000))
    assert reason == "decompression bomb: 12000 x 12000 = 144.0 MP exceeds the 120.0 MP limit"


def test_it_applies_the_configured_pixel_limit_from_the_header() -> None:
    reason = rejection(corpus.photo_jpeg(2000, 1000), ImagingLimits(max_pixels=1_000_000))
    assert reason == "decompression bomb: 2000 x 1000 = 2.0 MP exceeds the 1.0 MP limit"


def test_it_rejects_a_header_claiming_absurd_dimensions() -> None:
    assert rejection(corpus.huge_dimensions_header()) == "decompression bomb: 10000.0 MP exceeds the 120.0 MP limit"


# --- files that are accepted -----------------------------------------------------------------


def test_a_plain_upright_jpeg_takes_the_fast_path_and_serves_the_original() -> None:
    data = corpus.photo_jpeg(1600, 1200)
    prepared = prepare_image(data)
    assert prepared.display is None
    assert (prepared.format, prepared.extension, prepared.source_mode) == ("JPEG", "jpg", "RGB")
    assert (prepared.width, prepared.height, prepared.orientation) == (1600, 1200, 1)
    assert prepared.sha256 == hashlib.sha256(data).hexdigest()
    assert prepared.byte_size == len(data)
    assert prepared.notes == ()
    thumbnail = decode(prepared.thumbnail)
    assert thumbnail.mode == "RGB"
    assert thumbnail.size == (320, 240)
    assert (prepared.thumbnail.extension, prepared.thumbnail.content_type) == ("jpg", "image/jpeg")


def test_the_fast_path_thumbnail_looks_like_the_photo() -> None:
    prepared = prepare_image(corpus.photo_jpeg(1600, 1200, seed=4))
    expected = corpus.photo_pixels(1600, 1200, seed=4).resize((320, 240), Image.Resampling.BOX)
    difference = np.abs(np.asarray(decode(prepared.thumbnail), float) - np.asarray(expected, float))
    assert difference.mean() < 12


def test_a_grayscale_jpeg_serves_the_original_and_gets_an_rgb_thumbnail() -> None:
    prepared = prepare_image(corpus.photo_in_format("JPEG", 640, 480, mode="L"))
    assert prepared.display is None
    assert prepared.source_mode == "L"
    assert decode(prepared.thumbnail).mode == "RGB"


def test_the_thumbnail_respects_the_configured_size_and_never_upscales() -> None:
    small = prepare_image(corpus.photo_jpeg(), limits=ImagingLimits(thumbnail_size=100))
    assert decode(small.thumbnail).size == (100, 75)
    assert decode(prepare_image(corpus.rgba_png()).thumbnail).size == (64, 48)


def test_a_polyglot_jpeg_with_an_archive_appended_is_accepted_as_the_jpeg_it_is() -> None:
    data = corpus.polyglot()
    prepared = prepare_image(data)
    assert (prepared.format, prepared.extension, prepared.display, prepared.notes) == ("JPEG", "jpg", None, ())
    assert prepared.sha256 == hashlib.sha256(data).hexdigest()


def test_a_multi_picture_jpeg_is_a_still_jpeg_not_an_animation() -> None:
    prepared = prepare_image(corpus.mpo_jpeg(640, 480, seed=2))
    assert (prepared.format, prepared.extension) == ("MPO", "jpg")
    assert prepared.display is None
    assert (prepared.width, prepared.height) == (640, 480)
    assert prepared.notes == ()
    plain = prepare_image(corpus.photo_jpeg(640, 480, seed=2))
    assert hamming_distance(prepared.phash, plain.phash) <= 4


@pytest.mark.parametrize(
    ("format", "options", "extension", "display"),
    [
        ("PNG", {}, "png", None),
        ("WEBP", {"quality": 85}, "webp", None),
        ("WEBP", {"lossless": True}, "webp", None),
        ("GIF", {}, "gif", "png"),
        ("TIFF", {}, "tif", "png"),
        ("BMP", {}, "bmp", "png"),
        ("HEIF", {}, "heic", "jpg"),
        pytest.param(
            "AVIF", {}, "avif", "jpg", marks=pytest.mark.skipif(not features.check("avif"), reason="no AVIF")
        ),
    ],
)
def test_each_allowed_format_is_stored_under_its_own_extension_and_gets_a_display_copy_only_when_browsers_need_it(
    format: str, options: dict[str, object], extension: str, display: str | None
) -> None:
    prepared = prepare_image(corpus.photo_in_format(format, 320, 240, **options))
    assert prepared.extension == extension
    assert (prepared.width, prepared.height) == (320, 240)
    if display is None:
        assert prepared.display is None
    else:
        assert prepared.display is not None
        assert prepared.display.extension == display
        assert decode(prepared.display).size == (320, 240)


@pytest.mark.parametrize(("lossless", "extension"), [(False, "jpg"), (True, "png")])
def test_a_transparent_webp_gets_a_display_copy_that_keeps_lossless_sources_lossless(
    lossless: bool, extension: str
) -> None:
    prepared = prepare_image(corpus.photo_in_format("WEBP", mode="RGBA", lossless=lossless))
    assert prepared.display is not None
    assert prepared.display.extension == extension
    assert decode(prepared.display).mode == "RGB"


# --- orientation ------------------------------------------------------------------------------

# Where the red block stored in the top-left corner must appear once upright, per EXIF orientation
# (from the EXIF definition of where row 0 / column 0 of the stored pixels go).
MARKER_CORNER = {
    2: "top-right",
    3: "bottom-right",
    4: "bottom-left",
    5: "top-left",
    6: "top-right",
    7: "bottom-right",
    8: "bottom-left",
}


def corner_pixels(image: Image.Image) -> dict[str, tuple[int, ...]]:
    inset = corpus.MARKER_SIZE // 2
    right, bottom = image.width - 1 - inset, image.height - 1 - inset
    rgb = image.convert("RGB")
    return {
        "top-left": rgb.getpixel((inset, inset)),
        "top-right": rgb.getpixel((right, inset)),
        "bottom-left": rgb.getpixel((inset, bottom)),
        "bottom-right": rgb.getpixel((right, bottom)),
    }


def test_a_rotated_photo_comes_out_upright() -> None:
    prepared = prepare_image(corpus.exif_rotated_jpeg(6))
    assert (prepared.width, prepared.height, prepared.orientation) == (480, 640, 6)
    assert prepared.display is not None
    assert prepared.display.extension == "jpg"
    display = decode(prepared.display)
    assert display.size == (480, 640)
    corners = corner_pixels(display)
    assert is_red(corners["top-right"])
    assert not any(is_red(pixel) for corner, pixel in corners.items() if corner != "top-right")
    assert decode(prepared.thumbnail).size == (240, 320)


@pytest.mark.parametrize("orientation", sorted(MARKER_CORNER))
def test_every_exif_orientation_puts_the_marker_where_the_camera_saw_it(orientation: int) -> None:
    prepared = prepare_image(corpus.exif_rotated_jpeg(orientation))
    expected_size = (480, 640) if orientation >= 5 else (640, 480)
    assert (prepared.width, prepared.height, prepared.orientation) == (*expected_size, orientation)
    assert prepared.display is not None
    display = decode(prepared.display)
    assert display.size == expected_size
    red_corners = [corner for corner, pixel in corner_pixels(display).items() if is_red(pixel)]
    assert red_corners == [MARKER_CORNER[orientation]]
    thumbnail = decode(prepared.thumbnail)
    assert [c for c, p in corner_pixels(thumbnail.resize(expected_size)).items() if is_red(p)] == red_corners


def test_a_heic_is_upright_after_its_decoder_rotates_it_and_reports_the_orientation() -> None:
    prepared = prepare_image(corpus.photo_in_format("HEIF", 320, 240, seed=5, exif_orientation=6))
    assert (prepared.width, prepared.height, prepared.orientation) == (320, 240, 6)
    assert prepared.display is not None
    assert decode(prepared.display).size == (320, 240)
    upright = prepare_image(corpus.photo_jpeg(320, 240, seed=5))
    assert hamming_distance(prepared.phash, upright.phash) <= 8


def test_malformed_exif_is_ignored_with_a_note_not_rejected() -> None:
    prepared = prepare_image(corpus.malformed_exif_jpeg())
    assert prepared.orientation == 1
    assert prepared.display is None
    assert "malformed EXIF ignored" in prepared.notes


def test_an_out_of_range_orientation_is_ignored_with_a_note() -> None:
    prepared = prepare_image(corpus.exif_rotated_jpeg(9))
    assert (prepared.width, prepared.height, prepared.orientation) == (640, 480, 1)
    assert "invalid EXIF orientation 9 ignored" in prepared.notes


# --- colour and bit depth ----------------------------------------------------------------------


def test_a_cmyk_jpeg_gets_an_rgb_display_copy_with_the_right_colours() -> None:
    prepared = prepare_image(corpus.cmyk_jpeg(320, 240, seed=1))
    assert prepared.source_mode == "CMYK"
    assert prepared.display is not None
    assert prepared.display.extension == "jpg"
    display = decode(prepared.display)
    assert display.mode == "RGB"
    original = np.asarray(corpus.photo_pixels(320, 240, seed=1), float)
    assert np.abs(np.asarray(display, float) - original).mean() < 10
    assert any("CMYK" in note for note in prepared.notes)


def gray_row(derivative: Derivative) -> np.ndarray:
    return np.asarray(decode(derivative).convert("L"), dtype=int)[derivative.height // 2]


def assert_full_gradient(row: np.ndarray) -> None:
    assert row[0] <= 2 and row[-1] >= 253
    assert np.all(np.diff(row) >= 0)  # a ramp, not noise
    assert len(np.unique(row)) > 200  # kept its levels
    assert (row == 255).mean() < 0.05  # not clipped to white


def test_a_16_bit_gradient_stays_a_gradient_in_an_8_bit_png_display_copy() -> None:
    prepared = prepare_image(corpus.png16_gradient())
    assert prepared.source_mode == "I;16"
    assert prepared.display is not None
    assert prepared.display.extension == "png"
    assert decode(prepared.display).mode in ("RGB", "L")
    assert_full_gradient(gray_row(prepared.display))


@pytest.mark.parametrize(("kind", "mode"), [("uint16", "I;16"), ("int32", "I"), ("float32", "F")])
def test_high_bit_depth_tiffs_are_scaled_not_clipped(kind: str, mode: str) -> None:
    prepared = prepare_image(corpus.high_bit_depth_gray(kind))
    assert prepared.source_mode == mode
    assert prepared.display is not None
    assert_full_gradient(gray_row(prepared.display))


def test_a_16_bit_rgb_png_keeps_its_gradients() -> None:
    prepared = prepare_image(corpus.png16_rgb())
    red = np.asarray(decode(prepared.thumbnail), dtype=float)[:, :, 0].mean(axis=0)
    assert red[:10].mean() < 20 and red[-10:].mean() > 235
    assert 100 < red[len(red) // 2] < 155


def test_a_palette_png_with_transparency_is_composited_over_white() -> None:
    prepared = prepare_image(corpus.palette_png_with_transparency())
    assert prepared.source_mode == "P"
    assert prepared.display is not None
    assert prepared.display.extension == "png"
    display = decode(prepared.display).convert("RGB")
    assert display.getpixel((5, 20)) == (255, 255, 255)
    assert display.getpixel((50, 20)) == (0, 0, 255)
    assert "composited transparency over white" in prepared.notes


def test_an_rgba_png_is_composited_over_white_losslessly() -> None:
    prepared = prepare_image(corpus.rgba_png())
    assert prepared.display is not None
    display = decode(prepared.display).convert("RGB")
    assert display.getpixel((5, 20)) == (255, 255, 255)
    assert display.getpixel((50, 20)) == (0, 160, 0)


def test_a_wide_gamut_image_is_converted_to_srgb_in_its_display_copy() -> None:
    prepared = prepare_image(corpus.wide_gamut_image("TIFF", (200, 60, 60)))
    assert prepared.display is not None
    red, green, blue = decode(prepared.display).convert("RGB").getpixel((10, 10))
    # The same numbers mean a more saturated red in Display P3 than in sRGB.
    assert red > 210 and green < 50
    assert any("Display P3" in note for note in prepared.notes)


def test_a_wide_gamut_jpeg_still_serves_the_original_but_gets_an_srgb_thumbnail() -> None:
    prepared = prepare_image(corpus.wide_gamut_image("JPEG", (200, 60, 60), quality=95))
    assert prepared.display is None
    red, green, _ = decode(prepared.thumbnail).getpixel((10, 10))
    assert red > 210 and green < 50


def test_an_unreadable_icc_profile_is_ignored_with_a_note() -> None:
    buffer = io.BytesIO()
    corpus.photo_pixels(64, 48).save(buffer, "PNG", icc_profile=b"not a profile at all" * 10)
    prepared = prepare_image(buffer.getvalue())
    assert "unreadable ICC profile ignored" in prepared.notes


# --- perceptual hash ---------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_photo_and_its_exif_rotated_twin_hash_alike(orientation: int) -> None:
    upright = prepare_image(corpus.photo_jpeg(seed=9))
    rotated = prepare_image(corpus.photo_jpeg(seed=9, exif_orientation=orientation))
    assert (rotated.width, rotated.height) == (upright.width, upright.height)
    assert hamming_distance(upright.phash, rotated.phash) <= 8


def test_different_photos_hash_far_apart() -> None:
    hashes = [prepare_image(corpus.photo_jpeg(seed=seed)).phash for seed in range(6)]
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)
    assert min(hamming_distance(a, b) for a, b in combinations(hashes, 2)) > 16


def test_the_same_photo_in_another_format_hashes_alike() -> None:
    jpeg = prepare_image(corpus.photo_jpeg(640, 480, seed=3))
    png = prepare_image(corpus.photo_in_format("PNG", 640, 480, seed=3))
    assert hamming_distance(jpeg.phash, png.phash) <= 4


def test_hamming_distance_counts_differing_bits() -> None:
    assert hamming_distance("0" * 16, "0" * 16) == 0
    assert hamming_distance("0" * 16, "f" * 16) == 64
    assert hamming_distance("8000000000000001", "0000000000000000") == 2
    with pytest.raises(ValueError):
        hamming_distance("abc", "0" * 16)


# --- robustness --------------------------------------------------------------------------------


def test_results_and_rejections_survive_the_trip_back_from_a_worker_process() -> None:
    prepared = prepare_image(corpus.exif_rotated_jpeg())
    assert pickle.loads(pickle.dumps(prepared)) == prepared
    with pytest.raises(ImageRejected) as caught:
        prepare_image(corpus.truncated_jpeg())
    assert pickle.loads(pickle.dumps(caught.value)).reason == TRUNCATED


SEEDS = {
    "JPEG": corpus.photo_in_format("JPEG", 96, 64, quality=80),
    "PNG": corpus.photo_in_format("PNG", 48, 32),
    "GIF": corpus.photo_in_format("GIF", 48, 32),
    "TIFF": corpus.photo_in_format("TIFF", 48, 32, compression="tiff_lzw"),
    "WEBP": corpus.photo_in_format("WEBP", 48, 32),
    "BMP": corpus.photo_in_format("BMP", 48, 32),
}


@settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    cut=st.one_of(st.none(), st.integers(min_value=1, max_value=5000)),
    edits=st.lists(st.tuples(st.integers(min_value=0, max_value=5000), st.integers(0, 255)), max_size=6),
)
def test_damaged_files_are_either_accepted_or_rejected_never_crash(
    seed: str, cut: int | None, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(SEEDS[seed])
    for position, value in edits:
        data[position % len(data)] = value
    damaged = bytes(data[:cut])
    try:
        result = prepare_image(damaged)
    except ImageRejected as rejected:
        assert rejected.reason
    else:
        assert isinstance(result, PreparedImage)
        decode(result.thumbnail)


def test_a_mixed_upload_folder_is_sorted_into_accepted_and_rejected(tmp_path: Path) -> None:
    expected = corpus.mixed_folder(tmp_path / "upload")
    verdicts: dict[str, bool] = {}
    for name in expected:
        try:
            prepare_image((tmp_path / "upload" / name).read_bytes())
        except ImageRejected:
            verdicts[name] = False
        else:
            verdicts[name] = True
    assert verdicts == expected
