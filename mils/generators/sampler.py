"""Per-row seeded token sampling in one batched device operation.

Each row of a batch must draw its token from its own seed, so a reply never depends on its batch
mates. ``rng: counter`` (the default) makes each row's uniform from a counter-based hash of (row
seed, position): integer arithmetic on the device, no generator objects, nothing the host must wait
for, the same draws on a CPU and a GPU, and capturable in a CUDA graph. ``rng: torch`` keeps one
``torch.Generator`` per row (the draws runs made before the counter existed used).

The token is then an inverse-CDF draw from the temperature-scaled, top-k- then top-p-filtered
distribution (transformers' order): exact, one uniform per row.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for int64 tensors holding 32-bit values, without int64 overflow."""
    low = (x & 0xFFFF) * c
    high = ((x >> 16) * c) & 0xFFFF
    return (low + (high << 16)) & _MASK32


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's finaliser: every input bit flips each output bit with probability ~1/2."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def split_seeds(seeds: Sequence[int], device: torch.device | str) -> torch.Tensor:
    """Row seeds (any Python ints) as a ``[rows, 2]`` int64 tensor of their low and high 32 bits."""
    words = [(int(s) & _MASK32, (int(s) >> 32) & _MASK32) for s in seeds]
    return torch.tensor(words, dtype=torch.int64, device=device)


def counter_uniforms(seed_words: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """One float32 uniform in [0, 1) per row from (row seed, ``position``): 24 bits, like
    ``torch.rand``. ``position`` is a 0-d or ``[1]`` int64 tensor on the same device."""
    h = _fmix32((position * 0x9E3779B9 + 0x632BE5AB) & _MASK32)
    h = _fmix32(seed_words[:, 1] ^ h)
    h = _fmix32(seed_words[:, 0] ^ h)
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def generator_uniforms(generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """``rng: torch``: one draw from each row's own generator (a kernel call per row)."""
    return torch.cat([torch.rand(1, generator=g, device=g.device) for g in generators]).to(device)


class TokenSampler:
    """Temperature, top-k, then top-p (nucleus) sampling from one uniform per row.

    ``window_check``: look for the nucleus among the ``WINDOW`` most likely tokens when, for every
    row, they hold ``top_p`` of the mass (exact; a partial sort instead of a full one). The check
    reads one flag on the host, free on a CPU and a stall on a GPU, so the GPU path sorts instead
    (the paper profile's top_k 50 needs neither)."""

    WINDOW = 256

    def __init__(self, temperature: float, top_k: int | None, top_p: float, window_check: bool = False) -> None:
        self.temperature, self.top_k, self.top_p, self.window_check = temperature, top_k, top_p, window_check

    def __call__(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        vocab = probs.shape[-1]
        if self.top_k is not None and self.top_k < vocab:
            sorted_p, order = probs.topk(self.top_k, dim=-1)
            sorted_p = sorted_p / sorted_p.sum(-1, keepdim=True)
        elif self.window_check and self.WINDOW < vocab:
            sorted_p, order = probs.topk(self.WINDOW, dim=-1)
            if not bool((sorted_p.sum(-1) > self.top_p).all()):
                sorted_p, order = probs.sort(dim=-1, descending=True)
        else:
            sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        drop = sorted_p.cumsum(-1) - sorted_p > self.top_p
        cdf = sorted_p.masked_fill(drop, 0.0).cumsum(-1)
        picks = torch.searchsorted(cdf, (uniforms.to(cdf.device) * cdf[:, -1])[:, None])
        return order.gather(-1, picks.clamp(max=cdf.shape[-1] - 1)).squeeze(-1)


Rng = Literal["counter", "torch"]
