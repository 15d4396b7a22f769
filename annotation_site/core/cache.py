"""A Redis cache that a Redis outage cannot turn into errors.

Django's RedisCache raises on a dead server, so any page that touches the cache would answer 500 while
Redis is down. Nothing the cache holds is the only copy of anything, so this backend treats an unreachable
Redis as an empty cache that stores nothing: reads miss, writes are dropped, and one warning is logged per
outage. After a failure it stops calling Redis for BREAKER_SECONDS, so a server that hangs instead of
refusing costs one short timeout per process, not one per cache call."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
# Per call; a healthy Redis on the local network answers in well under a millisecond.
SOCKET_TIMEOUT_SECONDS = 0.5
_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class FailSafeRedisCache(RedisCache):
    def __init__(self, server: str, params: dict) -> None:
        options = dict(params.get("OPTIONS") or {})
        options.setdefault("socket_connect_timeout", SOCKET_TIMEOUT_SECONDS)
        options.setdefault("socket_timeout", SOCKET_TIMEOUT_SECONDS)
        # redis-py retries with a growing backoff by default: seconds per call against a dead server.
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0

    def _guarded(self, method: str, fallback: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            return fallback
        try:
            return getattr(super(), method)(*args, **kwargs)
        except _FAILURES as exc:
            if self._down_until == 0.0 or time.monotonic() - self._down_until > BREAKER_SECONDS:
                logger.warning("cache unavailable, serving without it for now: %s: %s", type(exc).__name__, exc)
            self._down_until = time.monotonic() + BREAKER_SECONDS
            return fallback

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._guarded("add", False, key, value, timeout, version)

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return self._guarded("get", default, key, default, version)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._guarded("set", None, key, value, timeout, version)

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._guarded("touch", False, key, timeout, version)

    def delete(self, key: str, version: int | None = None) -> bool:
        return self._guarded("delete", False, key, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict:
        return self._guarded("get_many", {}, keys, version)

    def has_key(self, key: str, version: int | None = None) -> bool:
        return self._guarded("has_key", False, key, version)

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        # As if the counter had just started: counters in a cache (throttles) fail open.
        return self._guarded("incr", delta, key, delta, version)

    def set_many(self, data: dict, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        return self._guarded("set_many", list(data), data, timeout, version)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._guarded("delete_many", None, keys, version)

    def clear(self) -> bool:
        return self._guarded("clear", False)
