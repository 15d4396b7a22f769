"""The cache backend used with Redis (annotation_site/core/cache.py): while Redis is down or hung it is an
empty cache that stores nothing, answering at once instead of raising or waiting; when Redis is back it
is a cache again."""

from __future__ import annotations

import threading

import pytest

from annotation_site.core.cache import FailSafeRedisCache

pytestmark = pytest.mark.redis


def _finishes(call) -> object:  # type: ignore[no-untyped-def]
    """The call's result, or a failure when it raises or is still waiting after 20 s (a hang)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:  # noqa: BLE001 - reported below with its type
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the cache call hung"
    assert "error" not in outcome, f"the cache call raised {outcome['error']!r}"
    return outcome["value"]


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_the_cache_answers_as_an_empty_cache_while_redis_is_away_and_works_again_after(private_redis, outage):
    cache = FailSafeRedisCache(private_redis.url(), {})
    cache.set("kept", "before")
    assert cache.get("kept") == "before"

    private_redis.stop() if outage == "stopped" else private_redis.freeze()
    try:
        assert _finishes(lambda: cache.get("kept", "fallback")) == "fallback"
        assert _finishes(lambda: cache.set("new", 1)) is None
        assert _finishes(lambda: cache.add("new", 1)) is False
        assert _finishes(lambda: cache.get_many(["kept", "new"])) == {}
        assert _finishes(lambda: cache.incr("counter")) == 1
        assert _finishes(lambda: cache.set_many({"a": 1, "b": 2})) == ["a", "b"]
        assert _finishes(lambda: cache.delete("kept")) is False
    finally:
        private_redis.start() if outage == "stopped" else private_redis.thaw()

    cache._down_until = 0.0  # as when the few seconds of not asking are over
    cache.set("after", "back")
    assert cache.get("after") == "back"
    assert cache.get("kept") == "before"  # append-only Redis kept it across the restart
