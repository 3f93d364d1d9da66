"""Caches keyed by an object's identity, for the compiled profile and R4 nodes.

The nodes are not hashable by value (or hashing them would cost a walk), and they do not change
once compiled, so what is derived from one is cached by ``id(node)``. Each entry keeps the node
itself: while cached, its id cannot be reused by another object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def by_identity(make: Callable[[K], V]) -> Callable[[K], V]:
    """``make(obj)``, made once per object (by identity) and kept."""
    cache: dict[int, tuple[Any, V]] = {}

    def get(obj: K) -> V:
        found = cache.get(id(obj))
        if found is None or found[0] is not obj:
            found = cache[id(obj)] = (obj, make(obj))
        return found[1]

    return get


__all__ = ["by_identity"]
