"""Stable seeds and cheap deterministic noise (never Python's salted ``hash()``)."""

from __future__ import annotations

import hashlib


def stable_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed from the run seed and names (device id, purpose), the same on every machine and run."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(seed).encode())
    for part in parts:
        h.update(b"\x00" + part.encode())
    return int.from_bytes(h.digest(), "big")


def mix(a: int, b: int) -> int:
    """A 32-bit integer hash of two integers (splitmix-style); used for per-slot jitter and weather."""
    x = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 29
    return x & 0xFFFFFFFF


def unit(a: int, b: int) -> float:
    """A deterministic number in [0, 1) from two integers."""
    return mix(a, b) / 4294967296.0
