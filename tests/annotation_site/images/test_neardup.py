from __future__ import annotations

from annotation_site.images.neardup import NearDuplicateIndex


def test_an_empty_index_finds_nothing() -> None:
    assert NearDuplicateIndex().nearest("0000000000000000", max_distance=64) is None


def test_it_finds_the_closest_hash_within_the_distance() -> None:
    index = NearDuplicateIndex([(1, "ffffffffffffffff"), (2, "00000000000000ff"), (3, "000000000000000f")])
    assert index.nearest("0000000000000001", max_distance=8) == (3, 3)


def test_a_hash_beyond_the_distance_is_not_a_near_duplicate() -> None:
    index = NearDuplicateIndex([(1, "00000000000000ff")])
    assert index.nearest("0000000000000000", max_distance=7) is None
    assert index.nearest("0000000000000000", max_distance=8) == (1, 8)


def test_hashes_added_after_a_lookup_are_found_by_the_next_one() -> None:
    index = NearDuplicateIndex([(1, "ffffffffffffffff")])
    assert index.nearest("0000000000000000", max_distance=4) is None
    index.add(2, "8000000000000000")
    assert index.nearest("0000000000000000", max_distance=4) == (2, 1)
    assert len(index) == 2


def test_the_top_bit_counts_like_any_other() -> None:
    # 64-bit hashes fill an unsigned integer completely; a signed type would mangle the top bit.
    index = NearDuplicateIndex([(7, "8000000000000001")])
    assert index.nearest("0000000000000001", max_distance=1) == (7, 1)
