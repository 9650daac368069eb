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
from mils.scorers.hf import TransformersTwoTower, projected


class ClapScorer(TransformersTwoTower):
    def __init__(self, model, processor, identity: str, max_seconds: float = 10.0, batch_size: int = 32) -> None:
        super().__init__(model, processor, identity, batch_size)
        self.max_seconds = max_seconds
        self.rate = processor.feature_extractor.sampling_rate

    @torch.inference_mode()
    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for sample in samples:
            wave = load_audio(sample.media, self.rate, self.max_seconds)
            inputs = self.processor(audio=[wave], sampling_rate=self.rate, return_tensors="pt").to(self.device)
            features = self.model.get_audio_features(**{k: v for k, v in inputs.items() if k != "input_ids"})
            out.append(torch.nn.functional.normalize(projected(features), dim=-1))
        return torch.cat(out).float().cpu().numpy()


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
