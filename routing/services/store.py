"""Shared state for routing across worker processes: Redis when ``REDIS_URL`` is set.

Without Redis (the single-machine first run, one worker process) an in-process store stands in;
it is shared between the threads of that process only, which is all such a setup has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from routing.services.config import redis_prefix


class Store(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def update(self, key: str, fn: Callable[[bytes | None], str], *, ttl_s: int) -> str: ...

    def acquire(self, key: str, token: str, *, ttl_s: float) -> bool: ...

    def release(self, key: str, token: str) -> None: ...

    def delete(self, key: str) -> None: ...


_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._release = self.redis.register_script(_RELEASE_LUA)

    def get(self, key: str) -> bytes | None:
        value = self.redis.get(redis_prefix() + key)
        return value if isinstance(value, bytes) else None

    def update(self, key: str, fn: Callable[[bytes | None], str], *, ttl_s: int) -> str:
        """Read, compute, write, atomically against other writers (optimistic WATCH/MULTI)."""
        import redis

        full = redis_prefix() + key
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(full)
                    current = pipe.get(full)
                    new = fn(current if isinstance(current, bytes) else None)
                    if isinstance(current, bytes) and new.encode() == current:
                        pipe.unwatch()
                        return new
                    pipe.multi()
                    pipe.set(full, new, ex=ttl_s)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def acquire(self, key: str, token: str, *, ttl_s: float) -> bool:
        ms = max(1, int(ttl_s * 1000))
        return bool(self.redis.set(redis_prefix() + key, token, nx=True, px=ms))

    def release(self, key: str, token: str) -> None:
        self._release(keys=[redis_prefix() + key], args=[token])

    def delete(self, key: str) -> None:
        self.redis.delete(redis_prefix() + key)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes, float]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] < time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(redis_prefix() + key)

    def update(self, key: str, fn: Callable[[bytes | None], str], *, ttl_s: int) -> str:
        full = redis_prefix() + key
        with self._lock:
            new = fn(self._live(full))
            self._data[full] = (new.encode(), time.monotonic() + ttl_s)
            return new

    def acquire(self, key: str, token: str, *, ttl_s: float) -> bool:
        full = redis_prefix() + key
        with self._lock:
            if self._live(full) is not None:
                return False
            self._data[full] = (token.encode(), time.monotonic() + ttl_s)
            return True

    def release(self, key: str, token: str) -> None:
        full = redis_prefix() + key
        with self._lock:
            if self._live(full) == token.encode():
                del self._data[full]

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(redis_prefix() + key, None)


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def get_store() -> Store:
    url = settings.REDIS_URL
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = RedisStore(url) if url else MemoryStore()
            _stores[url] = store
        return store
