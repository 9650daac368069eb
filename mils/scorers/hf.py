"""Shared pieces of the transformers-based two-tower scorers (X-CLIP, CLAP)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mils.scorers.weights import weights_digest


def projected(output) -> torch.Tensor:
    """transformers 5 returns model outputs from get_*_features (projection in pooler_output);
    older versions return the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class TransformersTwoTower:
    """Text tower through ``processor(text=...)`` + ``model.get_text_features``; cosine scores.
    Subclasses add ``embed_samples`` for their modality."""

    higher_is_better = True

    def __init__(self, model, processor, identity: str, batch_size: int = 32) -> None:
        self.model, self.processor = model.eval(), processor
        self.identity, self.batch_size = identity, batch_size
        self.device = next(model.parameters()).device

    def fingerprint(self) -> str:
        if not hasattr(self, "_digest"):
            self._digest = weights_digest(self.model)
        return f"{self.identity}:{self._digest}"

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.processor(text=list(texts[start : start + self.batch_size]), return_tensors="pt",
                                 padding=True, truncation=True).to(self.device)
            features = self.model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            out.append(torch.nn.functional.normalize(projected(features), dim=-1))
        return torch.cat(out).float().cpu().numpy()

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T
