"""Long lists of ids in `__in` lookups.

With server-side binding (settings: DATABASE_SERVER_SIDE_BINDING) every id of `pk__in=[...]` is a bound
parameter, and PostgreSQL's protocol takes at most 65,535 of them: a retrain at 10x RealQA (147,150 photos)
failed on it. Callers that may pass a project's worth of ids read them in batches instead."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

ID_BATCH = 10_000


def id_batches(ids: Iterable[int], size: int | None = None) -> Iterator[list[int]]:
    """The ids in lists of at most `size` (ID_BATCH), in their order."""
    size = size or ID_BATCH
    batch: list[int] = []
    for item in ids:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["ID_BATCH", "id_batches"]
