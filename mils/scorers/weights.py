"""Scorer fingerprints from the weights themselves.

The bank-embedding cache is keyed by the scorer's fingerprint, so it must change whenever the
weights do (a fine-tuned checkpoint under the same name, a re-downloaded model, random weights).
Hashing every parameter takes seconds even for SigLIP SO400M, once per loaded scorer.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def weights_digest(*modules: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) over the names and values of every tensor in ``modules``."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)
