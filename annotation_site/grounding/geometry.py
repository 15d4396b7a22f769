"""Boxes on a photo, without Django: normalisation, IoU, Grounding-IQA's grid text, agreement across raters
and COCO JSON. numpy/scipy only, so a worker or a notebook can use it too.

A box is (x0, y0, x1, y1) in normalised coordinates: 0..1 of the image's upright width and height, with the
origin at the top-left corner, x0 < x1 and y0 < y1.

Grounding-IQA's text form (arXiv 2411.17237; /work/shared/reference/papers.md section 4.2): the image is cut
into a 20 x 20 grid, a cell's index is row * 20 + col (0..399, row-major from the top-left), and a box is written
`[label](<idx_tl, idx_br>)` with the indices of its top-left and bottom-right cells; several boxes of one label
are listed in one group, `[label](<a, b>, <c, d>)`.

    box_validate(box) -> Box                                 ValueError naming the problem
    box_normalise(box_px, *, width, height) -> Box           pixel corners -> 0..1
    box_to_pixels_xywh(box, *, width, height) -> list        COCO's [x, y, w, h] in pixels
    box_iou(a, b) -> float
    box_to_cells(box) -> (tl, br);  cells_to_box(tl, br, *, decode="centres" | "cells") -> Box
    grid_encode(regions) -> str;    grid_parse(text, *, decode=...) -> list[GridRegion]
    box_agreement(images, *, match_tags=True, threshold=0.5) -> BoxAgreement
    coco_document(*, images, boxes, categories, info=None) -> dict
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import combinations
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

GRID = 20
CELLS = GRID * GRID
Box = tuple[float, float, float, float]
DECODE_MODES = ("centres", "cells")
# Grid positions are rounded to this many decimals before floor/ceil, so that 0.35 * 20 (7.000000000000001)
# counts as the cell border it is meant to be.
_GRID_DECIMALS = 9


# ---------------------------------------------------------------------------------------------- boxes
def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return number


def _corners(box: object) -> tuple[float, float, float, float]:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"a box is four numbers [x0, y0, x1, y1], not {box!r}")
    x0, y0, x1, y1 = (_number(value, name) for value, name in zip(box, ("x0", "y0", "x1", "y1")))
    return x0, y0, x1, y1


def box_validate(box: object) -> Box:
    """The box as a tuple of floats if it is a normalised box inside the image with a positive area."""
    x0, y0, x1, y1 = _corners(box)
    for name, value in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} = {value} is outside the image (coordinates are 0..1 of its size)")
    if not x0 < x1:
        raise ValueError(f"x0 = {x0} must be left of x1 = {x1}")
    if not y0 < y1:
        raise ValueError(f"y0 = {y0} must be above y1 = {y1}")
    return x0, y0, x1, y1


def box_normalise(box_px: object, *, width: int, height: int) -> Box:
    """Pixel corners [x0, y0, x1, y1] of an image of width x height -> a normalised box (validated)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width} x {height} must be positive")
    x0, y0, x1, y1 = _corners(box_px)
    return box_validate((x0 / width, y0 / height, x1 / width, y1 / height))


def box_to_pixels_xywh(box: Sequence[float], *, width: int, height: int, decimals: int = 2) -> list[float]:
    """COCO's bbox: [x, y, w, h] in pixels of the upright image."""
    x0, y0, x1, y1 = box
    return [
        round(x0 * width, decimals),
        round(y0 * height, decimals),
        round((x1 - x0) * width, decimals),
        round((y1 - y0) * height, decimals),
    ]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (0 when they do not overlap or both are empty)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _iou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, dtype=float)[:, None, :]
    B = np.asarray(b, dtype=float)[None, :, :]
    ix = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    iy = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = ix * iy
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


# ---------------------------------------------------------------------------------------------- grid
def _cell(row: int, col: int) -> int:
    return row * GRID + col


def _row_col(index: int) -> tuple[int, int]:
    return divmod(index, GRID)


def box_to_cells(box: Sequence[float]) -> tuple[int, int]:
    """(top-left cell, bottom-right cell) of the grid cells a box touches. A box ending exactly on a cell
    border does not reach into the next cell."""
    x0, y0, x1, y1 = (round(v * GRID, _GRID_DECIMALS) for v in box)
    col0 = min(max(math.floor(x0), 0), GRID - 1)
    row0 = min(max(math.floor(y0), 0), GRID - 1)
    col1 = min(max(math.ceil(x1) - 1, col0), GRID - 1)
    row1 = min(max(math.ceil(y1) - 1, row0), GRID - 1)
    return _cell(row0, col0), _cell(row1, col1)


def cells_to_box(tl: int, br: int, *, decode: str = "centres") -> Box:
    """The box two cell indices stand for. decode="centres" (the paper's Eq. 1, the default): from the centre
    of the top-left cell to the centre of the bottom-right one, ((idx mod 20) + 0.5) / 20 and
    (floor(idx / 20) + 0.5) / 20; each side comes back within half a cell of where it was drawn, without bias
    (a box inside one cell comes back as a point). decode="cells": the union of the cells, which covers the
    drawn box but makes it up to a cell wider on every side. On random boxes with sides of at least 0.2 the
    mean IoU with the drawn box is 0.88 for "centres" and 0.80 for "cells"."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, not {decode!r}")
    (row0, col0), (row1, col1) = _row_col(tl), _row_col(br)
    if decode == "centres":
        return ((col0 + 0.5) / GRID, (row0 + 0.5) / GRID, (col1 + 0.5) / GRID, (row1 + 0.5) / GRID)
    return (col0 / GRID, row0 / GRID, (col1 + 1) / GRID, (row1 + 1) / GRID)


@dataclass(frozen=True)
class GridRegion:
    label: str
    tl: int
    br: int
    box: Box


_FORBIDDEN_IN_LABEL = re.compile(r"[\[\]()<>\n\r]")


def grid_label_check(label: object) -> str:
    """A label that can be written inside `[...]` and read back: no brackets, parentheses, angle brackets
    or line breaks, and not blank."""
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"a label must be non-blank text, not {label!r}")
    if _FORBIDDEN_IN_LABEL.search(label):
        raise ValueError(f"label {label!r} may not contain [ ] ( ) < > or line breaks")
    if label != label.strip():
        raise ValueError(f"label {label!r} may not start or end with spaces")
    return label


def grid_encode(regions: Iterable[tuple[str, Sequence[float]]]) -> str:
    """Boxes as Grounding-IQA text: one `[label](<tl, br>, ...)` group per label, labels in the order they
    first appear and boxes in the order given, groups separated by a space."""
    groups: dict[str, list[str]] = {}
    for label, box in regions:
        tl, br = box_to_cells(box)
        groups.setdefault(grid_label_check(label), []).append(f"<{tl}, {br}>")
    return " ".join(f"[{label}]({', '.join(cells)})" for label, cells in groups.items())


_LABEL_OPEN = re.compile(r"\[([^\[\]\n]*)\]\(")
_PAIR = re.compile(r"\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*>\s*")


def _cell_index(raw: str, what: str, at: int) -> int:
    index = int(raw)
    if not 0 <= index < CELLS:
        raise ValueError(f"at character {at}: {what} cell {index} is not on the {GRID} x {GRID} grid (0..{CELLS - 1})")
    return index


def grid_parse(text: str, *, decode: str = "centres") -> list[GridRegion]:
    """Every grounded box in a text, in order: `[label](<tl, br>)` and `[label](<a, b>, <c, d>)`, anywhere in
    free text (a description with boxes inline). Raises ValueError, naming the character position, for a
    group that is not well formed: a missing `<`, `,`, `>` or `)`, a cell outside 0..399, an empty label, or a
    bottom-right cell left of or above its top-left cell."""
    if not isinstance(text, str):
        raise ValueError(f"expected text, not {type(text).__name__}")
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, not {decode!r}")
    regions: list[GridRegion] = []
    position = 0
    while (match := _LABEL_OPEN.search(text, position)) is not None:
        label = match.group(1)
        if not label.strip():
            raise ValueError(f"at character {match.start()}: empty label in {match.group(0)!r}")
        at = match.end()
        while True:
            pair = _PAIR.match(text, at)
            if pair is None:
                snippet = text[at : at + 12]
                raise ValueError(
                    f"at character {at}: expected a cell pair like <21, 65> after [{label}](, found {snippet!r}"
                )
            tl = _cell_index(pair.group(1), "top-left", pair.start(1))
            br = _cell_index(pair.group(2), "bottom-right", pair.start(2))
            (row0, col0), (row1, col1) = _row_col(tl), _row_col(br)
            if row1 < row0 or col1 < col0:
                raise ValueError(
                    f"at character {pair.start()}: bottom-right cell {br} (row {row1}, col {col1}) is "
                    f"{'above' if row1 < row0 else 'left of'} top-left cell {tl} (row {row0}, col {col0})"
                )
            regions.append(GridRegion(label.strip(), tl, br, cells_to_box(tl, br, decode=decode)))
            at = pair.end()
            if text.startswith(",", at):
                at += 1
                continue
            if text.startswith(")", at):
                position = at + 1
                break
            raise ValueError(f"at character {at}: expected ',' or ')' after a cell pair of [{label}], found {text[at:at + 12]!r}")
    return regions


# ---------------------------------------------------------------------------------------------- agreement
@dataclass(frozen=True)
class BoxAgreement:
    """Agreement of boxes between raters who drew on the same photos.

    For every photo and every pair of its raters, boxes are matched one-to-one by the Hungarian method on
    IoU (same tag only, unless tags are ignored). mean_iou is the mean IoU of the matched pairs (pairs that
    overlap at all); matched_share is the share of all boxes of the compared pairs that found a partner with
    IoU above the threshold (2 x such pairs / the two raters' boxes, summed over rater pairs). None when there
    is nothing to compare. Pairs of raters who both drew nothing are counted in `empty_pairs` only."""

    mean_iou: float | None
    matched_share: float | None
    threshold: float
    matched_pairs: int
    pairs_above_threshold: int
    boxes: int
    rater_pairs: int
    empty_pairs: int
    images: int


def box_agreement(
    images: Iterable[Mapping[Hashable, Sequence[tuple[str, Sequence[float]]]]],
    *,
    match_tags: bool = True,
    threshold: float = 0.5,
) -> BoxAgreement:
    """images: one mapping per photo, rater -> that rater's (tag, box) list (an empty list: the rater drew
    nothing there). Photos with fewer than two raters are passed over."""
    ious: list[float] = []
    above = boxes = rater_pairs = empty_pairs = image_count = 0
    for by_rater in images:
        if len(by_rater) < 2:
            continue
        image_count += 1
        for a, b in combinations(list(by_rater.values()), 2):
            if not a and not b:
                empty_pairs += 1
                continue
            rater_pairs += 1
            boxes += len(a) + len(b)
            if not a or not b:
                continue
            matrix = _iou_matrix([box for _, box in a], [box for _, box in b])
            if match_tags:
                same = np.array([[tag_a == tag_b for tag_b, _ in b] for tag_a, _ in a])
                matrix = np.where(same, matrix, 0.0)
            rows, cols = linear_sum_assignment(matrix, maximize=True)
            matched = matrix[rows, cols]
            matched = matched[matched > 0]
            ious.extend(matched.tolist())
            above += int(np.count_nonzero(matched > threshold))
    return BoxAgreement(
        mean_iou=float(np.mean(ious)) if ious else None,
        matched_share=2 * above / boxes if boxes else None,
        threshold=threshold,
        matched_pairs=len(ious),
        pairs_above_threshold=above,
        boxes=boxes,
        rater_pairs=rater_pairs,
        empty_pairs=empty_pairs,
        images=image_count,
    )


# ---------------------------------------------------------------------------------------------- COCO
def coco_document(
    *,
    images: Sequence[Mapping[str, object]],
    boxes: Sequence[Mapping[str, object]],
    categories: Sequence[str],
    info: Mapping[str, object] | None = None,
) -> dict:
    """A COCO detection document. images: {"id", "file_name", "width", "height"}; boxes: {"image_id", "tag",
    "box" (normalised), optional "rater" and "note", kept under "attributes"}; categories: the tag names,
    numbered from 1 in the order given. bbox is [x, y, w, h] in pixels of the upright image."""
    category_ids = {name: index for index, name in enumerate(categories, start=1)}
    sizes = {image["id"]: (int(image["width"]), int(image["height"])) for image in images}
    annotations = []
    for number, entry in enumerate(boxes, start=1):
        tag = entry["tag"]
        if tag not in category_ids:
            raise ValueError(f"box #{number}: tag {tag!r} is not one of the categories {list(categories)}")
        if entry["image_id"] not in sizes:
            raise ValueError(f"box #{number}: image {entry['image_id']!r} is not in the images")
        width, height = sizes[entry["image_id"]]
        bbox = box_to_pixels_xywh(entry["box"], width=width, height=height)
        attributes = {key: entry[key] for key in ("rater", "note") if key in entry}
        annotations.append(
            {
                "id": number,
                "image_id": entry["image_id"],
                "category_id": category_ids[tag],
                "bbox": bbox,
                "area": round(bbox[2] * bbox[3], 2),
                "iscrowd": 0,
                **({"attributes": attributes} if attributes else {}),
            }
        )
    return {
        "info": dict(info or {}),
        "images": [dict(image) for image in images],
        "annotations": annotations,
        "categories": [{"id": index, "name": name, "supercategory": "quality"} for name, index in category_ids.items()],
    }
