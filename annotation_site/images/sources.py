"""Where imported image bytes come from: files, folders, zip archives and uploads.

Pure (no Django): sources are handed to worker processes of the import pool, which read and decode
them in parallel."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Union


class SourceUnreadable(ValueError):
    """The bytes of a source could not be read; the message says why."""


@dataclass(frozen=True)
class FileSource:
    name: str
    path: str

    def read(self, max_bytes: int) -> bytes:
        try:
            size = os.path.getsize(self.path)
            if size > max_bytes:
                raise SourceUnreadable(f"file too large: {size / 1e6:.1f} MB exceeds the {max_bytes / 1e6:.1f} MB limit")
            with open(self.path, "rb") as handle:
                return handle.read(max_bytes + 1)
        except OSError as exc:
            raise SourceUnreadable(f"cannot read the file: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ZipMemberSource:
    name: str
    archive: str
    member: str

    def read(self, max_bytes: int) -> bytes:
        try:
            with zipfile.ZipFile(self.archive) as archive:
                info = archive.getinfo(self.member)
                if info.file_size > max_bytes:
                    raise SourceUnreadable(
                        f"file too large: {info.file_size / 1e6:.1f} MB exceeds the {max_bytes / 1e6:.1f} MB limit"
                    )
                with archive.open(info) as handle:
                    # The declared size can lie (a zip bomb); never inflate past the limit.
                    data = handle.read(max_bytes + 1)
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError) as exc:
            raise SourceUnreadable(f"cannot read the file from the zip archive: {exc}") from None
        if len(data) > max_bytes:
            raise SourceUnreadable(f"file too large: inflates past the {max_bytes / 1e6:.1f} MB limit")
        return data


@dataclass(frozen=True)
class BytesSource:
    """An upload already in memory (the admin's upload form)."""

    name: str
    data: bytes

    def read(self, max_bytes: int) -> bytes:
        if len(self.data) > max_bytes:
            raise SourceUnreadable(
                f"file too large: {len(self.data) / 1e6:.1f} MB exceeds the {max_bytes / 1e6:.1f} MB limit"
            )
        return self.data


Source = Union[FileSource, ZipMemberSource, BytesSource]


@dataclass(frozen=True)
class Unusable:
    """A path given to the import that yields no source at all (missing, unreadable zip, ...)."""

    name: str
    reason: str


def _is_hidden(part: str) -> bool:
    # Finder and Windows leave these beside photos; they are never images the user meant.
    return part.startswith(".") or part == "__MACOSX" or part in {"Thumbs.db", "desktop.ini"}


def _zip_sources(path: Path, display: str) -> Iterator[Source | Unusable]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
    except (OSError, zipfile.BadZipFile) as exc:
        yield Unusable(display, f"not a readable zip archive: {exc}")
        return
    for info in sorted(members, key=lambda i: i.filename):
        parts = Path(info.filename.replace("\\", "/")).parts
        if ".." in parts:
            # Read in place it could do no harm, but a name that climbs out of the archive is never what the
            # uploader meant: one rejected line says so, as for any other refused file.
            from django.utils.translation import gettext  # here: the module is imported by worker processes too

            yield Unusable(
                f"{display}:{info.filename}", gettext("the name in the zip archive climbs out of it (..): not imported")
            )
            continue
        if any(_is_hidden(part) for part in parts):
            continue
        yield ZipMemberSource(name=f"{display}:{info.filename}", archive=str(path), member=info.filename)


def collect_sources(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Source | Unusable]:
    """Expand files, folders (recursively, in name order) and zip archives into sources."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
                for filename in sorted(files):
                    if _is_hidden(filename):
                        continue
                    file_path = Path(root) / filename
                    yield from _file_or_zip(file_path, str(file_path))
        elif path.exists():
            yield from _file_or_zip(path, str(path))
        else:
            yield Unusable(str(path), "no such file or folder")


def _file_or_zip(path: Path, display: str) -> Iterator[Source | Unusable]:
    if path.suffix.lower() == ".zip":
        yield from _zip_sources(path, display)
    else:
        yield FileSource(name=display, path=str(path))
