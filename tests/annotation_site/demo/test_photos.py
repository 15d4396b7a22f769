"""The demo photo recipe: offline, deterministic, and the distortions really are graded.

Run with: .venv/bin/python -m pytest -p no:django tests/annotation_site/demo/test_photos.py -q
The full recipe is built once per module (a few seconds); the rest reads those files.
"""

from __future__ import annotations

import copy
import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy import ndimage

from annotation_site.demo.photos import (
    CSV_COLUMNS,
    DemoPhoto,
    apply_distortion,
    build_demo_photos,
    load_recipe,
    plan_demo_photos,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def _no_network(*args, **kwargs):
    raise AssertionError("the demo build tried to use the network")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoPhoto]]:
    out_dir = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        photos = build_demo_photos(out_dir)
    return out_dir, photos


def _by(photos: list[DemoPhoto], source: str, distortion: str) -> list[DemoPhoto]:
    """The pristine reference followed by the source's levels of one distortion, weakest first."""
    pristine = [p for p in photos if p.source == source and p.level == 0]
    levels = sorted((p for p in photos if p.source == source and p.distortion == distortion), key=lambda p: p.level)
    assert levels, f"the recipe has no {distortion} for {source}"
    return pristine + levels


def _gray(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("L"), dtype=np.float64)


def _sources_of(distortion: str) -> list[str]:
    return next(d["sources"] for d in load_recipe()["distortions"] if d["name"] == distortion)


def test_it_builds_the_photos_offline_deterministically(built, tmp_path):
    out_dir, photos = built
    # A second build in a fresh process (other hash seed, network cut too) must give identical bytes.
    script = (
        "import socket, sys\n"
        "from pathlib import Path\n"
        "def cut(*a, **k): raise AssertionError('network')\n"
        "socket.socket.connect = cut\n"
        "socket.create_connection = cut\n"
        "from annotation_site.demo.photos import build_demo_photos\n"
        "build_demo_photos(Path(sys.argv[1]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO_ROOT, env=env, check=True, timeout=120)
    names = sorted(path.name for path in out_dir.iterdir())
    assert names == sorted(path.name for path in tmp_path.iterdir())
    for name in names:
        assert (out_dir / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_the_count_matches_the_recipe(built):
    out_dir, photos = built
    recipe = load_recipe()
    expected = len(recipe["sources"]) + sum(len(d["sources"]) * len(d["levels"]) for d in recipe["distortions"])
    assert 60 <= expected <= 90
    assert len(photos) == expected == len(plan_demo_photos(recipe))
    assert len(list(out_dir.glob("*.jpg"))) == expected
    assert len({p.filename for p in photos}) == expected


def test_a_stronger_blur_level_has_lower_sharpness_than_a_weaker_one(built):
    out_dir, photos = built
    for source in _sources_of("blur"):
        sharpness = [ndimage.laplace(_gray(out_dir / p.filename)).var() for p in _by(photos, source, "blur")]
        assert sharpness == sorted(sharpness, reverse=True) and len(set(sharpness)) == len(sharpness), (
            source,
            sharpness,
        )


def test_a_stronger_jpeg_level_gives_a_smaller_file(built):
    out_dir, photos = built
    for source in _sources_of("jpeg"):
        sizes = [(out_dir / p.filename).stat().st_size for p in _by(photos, source, "jpeg")]
        assert all(a > b for a, b in zip(sizes, sizes[1:])), (source, sizes)


def test_under_exposure_levels_get_a_darker_mean(built):
    out_dir, photos = built
    for source in _sources_of("underexposure"):
        means = [_gray(out_dir / p.filename).mean() for p in _by(photos, source, "underexposure")]
        assert all(a > b for a, b in zip(means, means[1:])), (source, means)


def test_more_noise_and_over_exposure_move_the_pixels_further_from_the_reference(built):
    out_dir, photos = built
    for distortion in ("noise", "overexposure"):
        for source in _sources_of(distortion):
            reference, *levels = _by(photos, source, distortion)
            pristine = _gray(out_dir / reference.filename)
            errors = [np.abs(_gray(out_dir / p.filename) - pristine).mean() for p in levels]
            assert all(a < b for a, b in zip(errors, errors[1:])), (distortion, source, errors)


def test_saturation_levels_move_the_colourfulness_the_right_way(built):
    out_dir, photos = built

    def chroma(path: Path) -> float:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())

    for distortion, direction in (("desaturation", -1), ("oversaturation", 1)):
        for source in _sources_of(distortion):
            values = [chroma(out_dir / p.filename) for p in _by(photos, source, distortion)]
            assert all(direction * (b - a) > 0 for a, b in zip(values, values[1:])), (distortion, source, values)


def test_tilt_photos_have_no_black_borders(built):
    out_dir, photos = built
    recipe = load_recipe()
    tilt = next(d for d in recipe["distortions"] if d["name"] == "tilt")
    # On a white picture any exposed corner would show up as dark pixels.
    white = Image.new("RGB", (1024, 683), "white")
    for level in tilt["levels"]:
        tilted = np.asarray(apply_distortion(white, "tilt", level["params"], np.random.default_rng(0)))
        assert tilted.shape == (683, 1024, 3)
        assert tilted.min() >= 250, level
    # And in the built photos no corner is a black wedge (the darkest pristine corner, the rocket's night
    # sky, averages about 20; a wedge would be about 0).
    for photo in (p for p in photos if p.distortion == "tilt"):
        rgb = np.asarray(Image.open(out_dir / photo.filename).convert("RGB"), dtype=np.float64)
        for corner in (rgb[:8, :8], rgb[:8, -8:], rgb[-8:, :8], rgb[-8:, -8:]):
            assert corner.mean() > 8, (photo, corner.mean())


def test_the_csv_lists_every_file(built):
    out_dir, photos = built
    with (out_dir / "demo_photos.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert {row["filename"] for row in rows} == {path.name for path in out_dir.glob("*.jpg")}
    assert len(rows) == len(photos)
    for row, photo in zip(rows, photos):
        assert row["filename"] == photo.filename
        assert (row["source"], row["distortion"], int(row["level"])) == (photo.source, photo.distortion, photo.level)
        assert float(row["severity"]) == photo.severity
        assert (float(row["severity"]) == 0.0) == (int(row["level"]) == 0)


def test_file_names_do_not_give_the_distortion_away(built):
    _, photos = built
    for photo in photos:
        assert photo.source not in photo.filename and photo.distortion not in photo.filename


def test_two_pristine_photos_are_stored_sideways_with_an_exif_orientation(built):
    out_dir, photos = built
    tagged = [p for p in photos if p.exif_orientation != 1]
    assert len(tagged) == 2 and all(p.distortion == "pristine" for p in tagged)
    assert {p.exif_orientation for p in tagged} <= {6, 8}
    for photo in tagged:
        stored = Image.open(out_dir / photo.filename)
        assert stored.getexif()[0x0112] == photo.exif_orientation
        upright = ImageOps.exif_transpose(stored)
        # The upright view must match the same source's distorted photos, which are stored upright:
        # compare with its weakest blur / exposure / ... level, which barely changes the picture.
        sibling = next(p for p in photos if p.source == photo.source and p.level == 1)
        reference = Image.open(out_dir / sibling.filename)
        assert "exif" not in reference.info or 0x0112 not in reference.getexif()
        assert upright.size == reference.size and stored.size == reference.size[::-1]
        difference = np.abs(np.asarray(upright.convert("L"), float) - np.asarray(reference.convert("L"), float))
        assert difference.mean() < 20, (photo, difference.mean())
        wrong_way = np.asarray(upright.transpose(Image.Transpose.ROTATE_180).convert("L"), float)
        assert np.abs(wrong_way - np.asarray(reference.convert("L"), float)).mean() > difference.mean()


def test_a_second_build_rewrites_nothing(tmp_path):
    recipe = copy.deepcopy(load_recipe())
    recipe["sources"] = [{"name": "coins"}]
    recipe["output"]["long_side"] = 256
    recipe["distortions"] = [dict(d, sources=["coins"]) for d in recipe["distortions"][:3]]
    first = build_demo_photos(tmp_path, recipe=recipe)
    stamps = {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    os.utime(tmp_path / first[0].filename, ns=(1, 1))  # pretend it is old: only a content change may rewrite it
    assert build_demo_photos(tmp_path, recipe=recipe) == first
    assert (tmp_path / first[0].filename).stat().st_mtime_ns == 1
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name != first[0].filename} == {
        name: stamp for name, stamp in stamps.items() if name != first[0].filename
    }
    assert len(first) == 1 + 3 * 4


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["sources"].append({"name": "download_all"}), "ships offline"),
        (lambda r: r["distortions"][0]["levels"].reverse(), "levels must be"),
        (lambda r: r["distortions"][0]["sources"].append("nowhere"), "not in the recipe"),
        (lambda r: r["distortions"][0]["levels"][1].update(severity=0.01), "strictly increase"),
        (lambda r: r["sources"][0].update(exif_orientation=3), "exif_orientation"),
    ],
)
def test_a_broken_recipe_is_refused_before_anything_is_built(change, message, tmp_path):
    recipe = copy.deepcopy(load_recipe())
    change(recipe)
    with pytest.raises(ValueError, match=message):
        build_demo_photos(tmp_path, recipe=recipe)
    assert not any(tmp_path.iterdir())
