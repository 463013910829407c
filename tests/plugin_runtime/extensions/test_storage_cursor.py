"""`meta.storage` and `meta.utils.cursor` (R30-R34)."""

from __future__ import annotations

import threading

import pytest

from plugin_runtime.backends.memory import MemoryCache, MemoryStorage
from plugin_runtime.errors import IllegalOperationError
from plugin_runtime.extensions.cursor import Cursor
from plugin_runtime.extensions.storage import Storage


def test_storage_set_get_delete():
    backend = MemoryStorage()
    storage = Storage(backend, 39)
    storage.set("counter", 5)
    assert storage.get("counter", 999) == 5
    assert backend.rows(39) == {"counter": "5"}
    storage.delete("counter")
    assert storage.get("counter") is None
    assert storage.get("counter", 7) == 7


def test_stored_null_is_a_value():
    storage = Storage(MemoryStorage(), 39)
    storage.set("k", None)
    assert storage.get("k", 999) is None


def test_storage_is_private_to_the_config():
    backend = MemoryStorage()
    Storage(backend, 39).set("k", "v")
    assert Storage(backend, 40).get("k", "default") == "default"


def test_cursor_init_is_set_once_and_increments():
    cursor = Cursor(MemoryCache(), 39)
    cursor.init("cur")
    cursor.init("cur", 100)
    assert cursor.increment("cur") == 1
    assert cursor.increment("cur", 10) == 11
    assert cursor.increment("new", 5) == 5
    other = Cursor(MemoryCache(), 39)
    other.init("started", 100)
    assert other.increment("started") == 101


def test_cursor_values_must_be_integers():
    cursor = Cursor(MemoryCache(), 39)
    with pytest.raises(IllegalOperationError):
        cursor.init("c", "x")
    with pytest.raises(IllegalOperationError):
        cursor.increment("c", "x")


def test_concurrent_increments_never_repeat():
    cache = MemoryCache()
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        cursor = Cursor(cache, 39)
        for _ in range(200):
            value = cursor.increment("c")
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 801))
