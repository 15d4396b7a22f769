from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from annotation_site.images.sources import BytesSource, FileSource, SourceUnreadable, Unusable, ZipMemberSource, collect_sources


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(SourceUnreadable, match="file too large"):
        FileSource("big.jpg", str(path)).read(max_bytes=1000)


def test_a_zip_member_that_inflates_past_the_limit_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.jpg", b"\x00" * 5_000_000)
    [source] = list(collect_sources([archive]))
    assert isinstance(source, ZipMemberSource)
    with pytest.raises(SourceUnreadable, match="file too large"):
        source.read(max_bytes=1_000_000)


def test_a_zip_whose_directory_lies_about_a_size_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.jpg", b"\x00" * 3_000_000)
    data = bytearray(archive.read_bytes())
    # Patch the uncompressed size in the central directory to claim 100 bytes.
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    [source] = list(collect_sources([archive]))
    with pytest.raises(SourceUnreadable):
        source.read(max_bytes=1_000_000)


def test_a_missing_path_is_reported_as_unusable(tmp_path: Path) -> None:
    assert list(collect_sources([tmp_path / "gone"])) == [Unusable(str(tmp_path / "gone"), "no such file or folder")]


def test_an_upload_in_memory_reads_back_its_bytes() -> None:
    assert BytesSource("a.jpg", b"abc").read(max_bytes=10) == b"abc"
    with pytest.raises(SourceUnreadable):
        BytesSource("a.jpg", b"abcdef").read(max_bytes=3)
