"""Image-text scorer on open_clip: any model name + pretrained tag, or a local checkpoint.

Paper default: ``ViT-SO400M-14-SigLIP`` / ``webli``. Scores are cosine similarities of
L2-normalised embeddings, as in the MILS release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mils.errors import MissingInputError
from mils.media import load_image
from mils.protocols import Sample
from mils.registry import register
from mils.scorers.weights import weights_digest


class OpenClipScorer:
    higher_is_better = True

    def __init__(self, model, preprocess, tokenizer, identity: str, batch_size: int = 64) -> None:
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.identity = identity
        self.batch_size = batch_size
        self.device = next(model.parameters()).device

    def fingerprint(self) -> str:
        return self.identity

    @torch.inference_mode()
    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for start in range(0, len(samples), self.batch_size):
            batch = samples[start : start + self.batch_size]
            pixels = torch.stack([self.preprocess(load_image(s.media)) for s in batch]).to(self.device)
            out.append(torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            out.append(torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


@register("scorer", "open_clip")
def open_clip_scorer(
    model: str = "ViT-SO400M-14-SigLIP",
    pretrained: str | None = "webli",
    device: str | None = None,
    batch_size: int = 64,
) -> OpenClipScorer:
    """``pretrained``: an open_clip tag, a local checkpoint file, or None for random weights."""
    import open_clip

    if pretrained and ("/" in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors"))):
        if not Path(pretrained).is_file():
            raise MissingInputError(f"open_clip checkpoint not found: {pretrained}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    clip, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained, device=device)
    tokenizer = open_clip.get_tokenizer(model)
    identity = f"open_clip:{model}:{weights_digest(clip)}"
    return OpenClipScorer(clip, preprocess, tokenizer, identity, batch_size)
