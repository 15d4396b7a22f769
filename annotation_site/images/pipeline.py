"""Reading and decoding import sources, in parallel worker processes when asked (pure: no Django)."""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator

from .imaging import ImageRejected, ImagingLimits, PreparedImage, prepare_image
from .sources import Source, SourceUnreadable


@dataclass(frozen=True)
class Decoded:
    name: str
    prepared: PreparedImage
    data: bytes


@dataclass(frozen=True)
class Refused:
    name: str
    reason: str


def decode_source(source: Source, limits: ImagingLimits) -> Decoded | Refused:
    try:
        data = source.read(limits.max_bytes)
        return Decoded(source.name, prepare_image(data, limits=limits), data)
    except SourceUnreadable as exc:
        return Refused(source.name, str(exc))
    except ImageRejected as exc:
        return Refused(source.name, exc.reason)


def decode_sources(sources: Iterable[Source], limits: ImagingLimits, *, workers: int = 1) -> Iterator[Decoded | Refused]:
    """Decode in order. With workers > 1 a process pool decodes ahead, but never more than a few
    files per worker, so memory stays flat however many files an import has."""
    if workers <= 1:
        for source in sources:
            yield decode_source(source, limits)
        return
    # spawn, not fork: the parent holds database connections that a forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    window: deque[Future[Decoded | Refused]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for source in sources:
            window.append(pool.submit(decode_source, source, limits))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
