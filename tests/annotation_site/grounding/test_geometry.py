"""Boxes without Django: normalisation, IoU, Grounding-IQA's 20 x 20 grid text and its parser, agreement
by Hungarian matching, and COCO JSON."""

from __future__ import annotations

from itertools import permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation_site.grounding.geometry import (
    GRID,
    box_agreement,
    box_iou,
    box_normalise,
    box_to_cells,
    box_validate,
    cells_to_box,
    coco_document,
    grid_encode,
    grid_parse,
)

CELL = 1 / GRID
EPS = 1e-9


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
    y = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
    return (x[0], y[0], x[1], y[1])


labels = st.text(st.characters(codec="utf-8", exclude_characters="[]()<>\n\r"), min_size=1, max_size=12).filter(
    lambda s: s == s.strip() and s != ""
)


@st.composite
def cell_pairs(draw: st.DrawFn) -> tuple[int, int]:
    row0, row1 = sorted(draw(st.lists(st.integers(0, GRID - 1), min_size=2, max_size=2)))
    col0, col1 = sorted(draw(st.lists(st.integers(0, GRID - 1), min_size=2, max_size=2)))
    return row0 * GRID + col0, row1 * GRID + col1


# ------------------------------------------------------------------------------------------ boxes
def test_pixel_corners_become_coordinates_between_0_and_1_of_the_image():
    assert box_normalise([50, 30, 150, 90], width=200, height=120) == (0.25, 0.25, 0.75, 0.75)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([0.5, 0.1, 0.2, 0.3], "x0 = 0.5 must be left of x1 = 0.2"),
        ([0.1, 0.3, 0.2, 0.3], "y0 = 0.3 must be above y1 = 0.3"),
        ([0.1, 0.1, 1.2, 0.3], "x1 = 1.2 is outside the image"),
        ([-0.1, 0.1, 0.2, 0.3], "x0 = -0.1 is outside the image"),
        ([0.1, 0.1, 0.2], "a box is four numbers"),
        ("0,0,1,1", "a box is four numbers"),
        ([0.1, "0.1", 0.2, 0.3], "y0 must be a number"),
        ([0.1, float("nan"), 0.2, 0.3], "y0 must be a finite number"),
        ([0.1, True, 0.2, 0.3], "y0 must be a number"),
    ],
)
def test_a_bad_box_is_refused_with_the_problem_named(box, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        box_validate(box)


def test_iou_of_known_boxes():
    assert box_iou((0, 0, 0.5, 0.5), (0, 0, 0.5, 0.5)) == 1.0
    assert box_iou((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)) == 0.0
    assert box_iou((0, 0, 0.4, 0.4), (0.2, 0, 0.6, 0.4)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 1, 1), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(0.25)


# ------------------------------------------------------------------------------------------ grid
def test_cells_are_numbered_row_major_from_the_top_left():
    assert box_to_cells((0, 0, 1, 1)) == (0, 399)
    assert box_to_cells((0.95, 0, 1, 0.05)) == (19, 19)  # top-right cell
    assert box_to_cells((0, 0.95, 0.05, 1)) == (380, 380)  # bottom-left cell
    # A box ending exactly on a cell border stays out of the next cell, in spite of 0.35 * 20 = 7.000000000000001.
    assert box_to_cells((0.05, 0.05, 0.35, 0.35)) == (21, 126)


def test_the_papers_lighthouse_example_decodes_to_rows_1_to_15_and_columns_15_to_19():
    [region] = grid_parse("The [lighthouse](<35, 319>) is sharp.")
    assert (region.label, region.tl, region.br) == ("lighthouse", 35, 319)
    assert region.box == pytest.approx((15.5 / 20, 1.5 / 20, 19.5 / 20, 15.5 / 20))  # cell centres, as the paper
    [cells] = grid_parse("[lighthouse](<35, 319>)", decode="cells")
    assert cells.box == pytest.approx((15 / 20, 1 / 20, 20 / 20, 16 / 20))


def test_encoding_groups_boxes_by_label_in_order_of_first_appearance():
    text = grid_encode([("blur", (0, 0, 0.1, 0.1)), ("noise", (0.5, 0.5, 1, 1)), ("blur", (0.9, 0.9, 1, 1))])
    assert text == "[blur](<0, 21>, <378, 399>) [noise](<210, 399>)"


def test_boxes_are_found_inside_free_text_with_any_spacing():
    regions = grid_parse("Is the lighting of the [background](<0,388>) sufficient? The [window](< 10 , 399 >, <0, 0>).")
    assert [(r.label, r.tl, r.br) for r in regions] == [("background", 0, 388), ("window", 10, 399), ("window", 0, 0)]
    assert grid_parse("No boxes here, only [square brackets] and (parentheses).") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[blur](<10>)", "at character 7: expected a cell pair like <21, 65>"),
        ("[blur](<10, 30)", "at character 7: expected a cell pair"),
        ("[blur](<10, 30>", "at character 15: expected ',' or '\\)'"),
        ("[blur](<10, 30> <30, 40>)", "expected ',' or '\\)'"),
        ("[blur](<10, 400>)", "bottom-right cell 400 is not on the 20 x 20 grid"),
        ("[blur](<-1, 20>)", "top-left cell -1 is not on the 20 x 20 grid"),
        ("[blur](<45, 3>)", "bottom-right cell 3 \\(row 0, col 3\\) is above top-left cell 45 \\(row 2, col 5\\)"),
        ("[blur](<45, 44>)", "bottom-right cell 44 \\(row 2, col 4\\) is left of top-left cell 45"),
        ("[ ](<1, 2>)", "at character 0: empty label"),
        ("[blur](<1, 2>, )", "expected a cell pair"),
        ("see [blur](https://example.org)", "at character 11: expected a cell pair"),
    ],
)
def test_malformed_grid_text_is_refused_with_the_place_and_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        grid_parse(text)


def test_a_label_that_cannot_be_read_back_is_refused_when_encoding():
    with pytest.raises(ValueError, match="may not contain"):
        grid_encode([("a [b]", (0, 0, 1, 1))])


def _by_label(regions, parsed):  # type: ignore[no-untyped-def]
    # Grouping by label reorders the boxes: compare label by label, in order.
    for label in {label for label, _ in regions}:
        given_boxes = [box for l, box in regions if l == label]
        back = [r.box for r in parsed if r.label == label]
        assert len(back) == len(given_boxes)
        yield from zip(given_boxes, back)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, boxes()), min_size=1, max_size=8))
def test_boxes_come_back_from_their_text_within_half_a_cell_as_cell_centres(regions):
    for original, decoded in _by_label(regions, grid_parse(grid_encode(regions))):
        for a, b in zip(original, decoded):
            assert abs(a - b) <= CELL / 2 + EPS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, boxes()), min_size=1, max_size=8))
def test_boxes_come_back_from_their_text_covered_by_their_cells(regions):
    for original, decoded in _by_label(regions, grid_parse(grid_encode(regions), decode="cells")):
        for a, b in zip(original, decoded):
            assert abs(a - b) < CELL + EPS
        assert decoded[0] <= original[0] + EPS and decoded[1] <= original[1] + EPS
        assert decoded[2] >= original[2] - EPS and decoded[3] >= original[3] - EPS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, st.lists(cell_pairs(), min_size=1, max_size=3)), min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_canonical_grid_text_is_encoded_back_to_the_same_text(groups):
    text = " ".join(f"[{label}]({', '.join(f'<{tl}, {br}>' for tl, br in pairs)})" for label, pairs in groups)
    for decode in ("cells", "centres"):
        assert grid_encode((r.label, r.box) for r in grid_parse(text, decode=decode)) == text


@given(cell_pairs())
def test_cells_decode_to_boxes_that_encode_to_the_same_cells(pair):
    for decode in ("cells", "centres"):
        assert box_to_cells(cells_to_box(*pair, decode=decode)) == pair


# ------------------------------------------------------------------------------------------ agreement
def test_raters_who_drew_the_same_boxes_agree_fully():
    drawn = [("blur", (0.1, 0.1, 0.4, 0.4)), ("noise", (0.5, 0.5, 0.9, 0.9))]
    result = box_agreement([{"a": drawn, "b": list(reversed(drawn))}])
    assert (result.mean_iou, result.matched_share, result.matched_pairs, result.boxes) == (1.0, 1.0, 2, 4)


def test_boxes_with_different_tags_match_only_when_tags_are_ignored():
    image = {"a": [("blur", (0.1, 0.1, 0.4, 0.4))], "b": [("noise", (0.1, 0.1, 0.4, 0.4))]}
    strict = box_agreement([image])
    assert (strict.mean_iou, strict.matched_share) == (None, 0.0)
    loose = box_agreement([image], match_tags=False)
    assert (loose.mean_iou, loose.matched_share) == (1.0, 1.0)


def test_matching_is_one_to_one_and_maximises_the_total_iou_where_greedy_would_not():
    # Greedy would pair a0 with b0 (IoU 0.6) and leave a1 with nothing; the best one-to-one matching pairs
    # a0-b1 and a1-b0.
    a = [("blur", (0.0, 0.0, 0.6, 1.0)), ("blur", (0.0, 0.0, 0.3, 1.0))]
    b = [("blur", (0.0, 0.0, 1.0, 1.0)), ("blur", (0.0, 0.0, 0.2, 1.0))]
    result = box_agreement([{"a": a, "b": b}])
    assert result.matched_pairs == 2
    assert result.mean_iou == pytest.approx((box_iou(a[0][1], b[0][1]) + box_iou(a[1][1], b[1][1])) / 2)


def test_unmatched_boxes_and_raters_who_drew_nothing_lower_the_matched_share():
    box = (0.1, 0.1, 0.5, 0.5)
    result = box_agreement(
        [
            {"a": [("blur", box)], "b": [("blur", box)], "c": []},  # a-b agree; a-c and b-c do not
            {"a": [], "b": []},  # nothing drawn by both: counted apart
            {"a": [("blur", box)]},  # a single rater: nothing to compare
        ]
    )
    assert result.matched_share == pytest.approx(2 / 4)
    assert (result.rater_pairs, result.empty_pairs, result.images) == (3, 1, 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(boxes(), min_size=1, max_size=4), st.lists(boxes(), min_size=1, max_size=4))
def test_the_matching_reaches_the_brute_force_best_total_iou(a, b):
    result = box_agreement([{"a": [("t", x) for x in a], "b": [("t", x) for x in b]}], threshold=0.0)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    best = max(sum(box_iou(s, l) for s, l in zip(short, chosen)) for chosen in permutations(long, len(short)))
    assert (result.mean_iou or 0.0) * result.matched_pairs == pytest.approx(best, abs=1e-9)


# ------------------------------------------------------------------------------------------ COCO
def test_coco_boxes_are_pixel_xywh_with_the_tags_as_categories():
    document = coco_document(
        images=[{"id": 7, "file_name": "a.jpg", "width": 200, "height": 100}],
        boxes=[{"image_id": 7, "tag": "noise", "box": (0.25, 0.5, 0.75, 1.0), "rater": "r1", "note": "sky"}],
        categories=["blur", "noise"],
    )
    assert document["categories"] == [
        {"id": 1, "name": "blur", "supercategory": "quality"},
        {"id": 2, "name": "noise", "supercategory": "quality"},
    ]
    [annotation] = document["annotations"]
    assert annotation["bbox"] == [50.0, 50.0, 100.0, 50.0] and annotation["area"] == 5000.0
    assert annotation["category_id"] == 2 and annotation["attributes"] == {"rater": "r1", "note": "sky"}


def test_coco_refuses_a_box_whose_tag_is_not_a_category():
    with pytest.raises(ValueError, match="tag 'glare' is not one of the categories"):
        coco_document(images=[{"id": 1, "file_name": "a", "width": 1, "height": 1}], boxes=[{"image_id": 1, "tag": "glare", "box": (0, 0, 1, 1)}], categories=["blur"])
