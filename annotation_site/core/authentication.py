"""API token authentication with a short in-process cache.

Every rater request carries its token; looking it up in the database each time costs a query on the
hottest path. A token stays cached for TOKEN_CACHE_SECONDS, so a revoked token or a deactivated user
keeps access for at most that long."""

from __future__ import annotations

import time
from threading import Lock

from rest_framework.authentication import TokenAuthentication

TOKEN_CACHE_SECONDS = 60.0
_MAX_ENTRIES = 10_000

_cache: dict[str, tuple[float, tuple]] = {}
_lock = Lock()


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple:
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < TOKEN_CACHE_SECONDS:
            return hit[1]
        result = super().authenticate_credentials(key)  # raises AuthenticationFailed for bad tokens
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now, result)
        return result
