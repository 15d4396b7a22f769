"""A release folder as one zip file, for staff to download from any web machine."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

# Formats that are compressed already: deflating them again costs time and saves nothing.
STORED_SUFFIXES = frozenset({".parquet", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".heic", ".zip", ".gz"})


def zip_folder(folder: Path, handle: BinaryIO, *, top: str) -> int:
    """Write every file under ``folder`` into ``handle`` as a zip whose entries sit under ``top/`` (so that it
    unpacks into one folder), in sorted order; text deflated, compressed formats stored. Returns the file count."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
        for path in files:
            method = zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}", compress_type=method, compresslevel=6)
    return len(files)


def archive_name(*, project_slug: str, release_id: str, manifest_sha256: str) -> str:
    """Where a release's zip goes in the media storage; the manifest digest keeps two builds apart."""
    return f"releases/{project_slug}/{release_id}-{manifest_sha256[:12]}.zip"  # storage names use "/" everywhere
