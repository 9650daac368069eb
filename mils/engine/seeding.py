"""Seeds derived from names, never from order: a sample's randomness is its own."""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and any identifying parts (sample id, step, purpose).

    Uses SHA-256 rather than ``hash()`` so it is stable across processes and machines.
    """
    text = "\x1f".join([str(run_seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
