"""Audio-text scorers: CLAP through transformers (``ClapModel``), ImageBind when installed.

The paper used ImageBind; CLAP (e.g. ``laion/clap-htsat-unfused``) is the transformers-native
choice. Audio is read with soundfile, mixed to mono and resampled to the model's rate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mils.media import load_audio
from mils.protocols import Sample
from mils.registry import register
from mils.scorers.video import projected


class ClapScorer:
    higher_is_better = True

    def __init__(self, model, processor, identity: str, max_seconds: float = 10.0, batch_size: int = 32) -> None:
        self.model, self.processor = model.eval(), processor
        self.identity, self.max_seconds, self.batch_size = identity, max_seconds, batch_size
        self.rate = processor.feature_extractor.sampling_rate
        self.device = next(model.parameters()).device

    def fingerprint(self) -> str:
        return self.identity

    @torch.inference_mode()
    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for sample in samples:
            wave = load_audio(sample.media, self.rate, self.max_seconds)
            inputs = self.processor(audio=[wave], sampling_rate=self.rate, return_tensors="pt").to(self.device)
            features = self.model.get_audio_features(**{k: v for k, v in inputs.items() if k != "input_ids"})
            out.append(torch.nn.functional.normalize(projected(features), dim=-1))
        return torch.cat(out).float().cpu().numpy()

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


@register("scorer", "clap")
def clap_scorer(model: str = "laion/clap-htsat-unfused", device: str | None = None, max_seconds: float = 10.0,
                batch_size: int = 32) -> ClapScorer:
    """An HF id or a local directory holding a ClapModel and its ClapProcessor."""
    from transformers import ClapModel, ClapProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    clap = ClapModel.from_pretrained(model).to(device)
    return ClapScorer(clap, ClapProcessor.from_pretrained(model), f"clap:{model}", max_seconds, batch_size)


@register("scorer", "imagebind")
def imagebind_scorer(device: str | None = None):
    """ImageBind (the paper's audio scorer) when the ``imagebind`` package is installed."""
    try:
        import imagebind  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "the 'imagebind' scorer needs the imagebind package (pip install "
            "git+https://github.com/facebookresearch/ImageBind); 'clap' works without it"
        ) from err
    raise NotImplementedError("ImageBind is installed but its adapter is not written yet; use 'clap' or a plugin")
