"""Audio-text scorers: CLAP through transformers (``ClapModel``), ImageBind when installed.

The paper used ImageBind; CLAP (e.g. ``laion/clap-htsat-unfused``) is the transformers-native
choice. Audio is read with soundfile, mixed to mono and resampled to the model's rate.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch

from mils.engine.seeding import derive_seed
from mils.errors import require
from mils.media import load_audio, spread_windows
from mils.protocols import Sample
from mils.registry import register
from mils.scorers.hf import TransformersTwoTower, projected
from mils.scorers.weights import weights_digest


@contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    """CLAP's feature extractor crops audio longer than its window at random ("fusion"), from numpy's
    global generator: seed it per sample, so a clip always gets the same crops, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


class ClapScorer(TransformersTwoTower):
    """CLAP on the first ``max_seconds`` of a clip, or (``windows`` > 0) the mean of the unit embeddings of
    ``windows`` clips of ``window_seconds`` spread over the whole file, as ImageBind reads audio (not
    re-normalised, as ImageBind averages). ``scale`` multiplies every score (ImageBind's audio tower: 20)."""

    def __init__(self, model, processor, identity: str, max_seconds: float = 10.0, batch_size: int = 32,
                 windows: int = 0, window_seconds: float = 2.0, scale: float = 1.0) -> None:
        if windows:
            identity += f":windows={windows}x{window_seconds}s"
        if scale != 1.0:
            identity += f":scale={scale}"
        super().__init__(model, processor, identity, batch_size)
        self.max_seconds, self.windows, self.window_seconds, self.scale = max_seconds, windows, window_seconds, scale
        self.rate = processor.feature_extractor.sampling_rate

    @torch.inference_mode()
    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for sample in samples:
            if self.windows:
                waves = spread_windows(load_audio(sample.media, self.rate), self.rate, self.windows, self.window_seconds)
            else:
                waves = [load_audio(sample.media, self.rate, self.max_seconds)]
            with _seeded_numpy(derive_seed(0, sample.seed_id, 0, "clap-crops")):
                inputs = self.processor(audio=waves, sampling_rate=self.rate, return_tensors="pt").to(self.device)
            features = self.model.get_audio_features(**{k: v for k, v in inputs.items() if k != "input_ids"})
            out.append(torch.nn.functional.normalize(projected(features), dim=-1).mean(dim=0, keepdim=True))
        return torch.cat(out).float().cpu().numpy()

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return self.scale * (sample_emb @ text_emb.T)


@register("scorer", "clap")
def clap_scorer(model: str = "laion/clap-htsat-unfused", device: str | None = None, max_seconds: float = 10.0,
                batch_size: int = 32, windows: int = 0, window_seconds: float = 2.0, scale: float = 1.0) -> ClapScorer:
    """An HF id or a local directory holding a ClapModel and its ClapProcessor. ``windows: 3`` and
    ``scale: 20`` read and score audio the way the paper's ImageBind does."""
    from transformers import ClapModel, ClapProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    clap = ClapModel.from_pretrained(model).to(device)
    return ClapScorer(clap, ClapProcessor.from_pretrained(model), f"clap:{model}", max_seconds, batch_size,
                      windows, window_seconds, scale)


class ImageBindAudioScorer:
    """ImageBind audio and text towers (the paper's audio scorer). Written against the public
    ``imagebind`` API; the test suite does not run it (its weights cannot be fetched offline)."""

    higher_is_better = True

    def __init__(self, model, data_module, modality, device: str, scaled: bool = False) -> None:
        self.model, self.data, self.modality, self.device = model.eval(), data_module, modality, device
        self.scaled = scaled

    def fingerprint(self) -> str:
        if not hasattr(self, "_digest"):
            self._digest = weights_digest(self.model)
        return f"imagebind:huge:{self._digest}" + (":scaled" if self.scaled else "")

    @torch.inference_mode()
    def _embed(self, key, inputs) -> np.ndarray:
        """``scaled``: the model's own output (audio: the mean over its three clips of 20 x a unit vector;
        text: a unit vector times the learned logit scale ``s`` of the checkpoint, at most 100), so scores
        are 20 x s x cosine, as the official code shows them."""
        out = self.model({key: inputs})[key]
        return (out if self.scaled else torch.nn.functional.normalize(out, dim=-1)).float().cpu().numpy()

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        for sample in samples:
            load_audio(sample.media, 16000, max_seconds=1)  # a clear error for unreadable files first
        paths = [str(s.media) for s in samples]
        return self._embed(self.modality.AUDIO, self.data.load_and_transform_audio_data(paths, self.device))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(self.modality.TEXT, self.data.load_and_transform_text(list(texts), self.device))

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


@register("scorer", "imagebind")
def imagebind_scorer(device: str | None = None, scaled: bool = True) -> ImageBindAudioScorer:
    """ImageBind-huge when the ``imagebind`` package is installed (it downloads its weights). It reads three
    2 s clips spread over the file; ``scaled`` keeps its scores as the official code shows them (20 x s x cosine,
    ``s`` the text tower's learned logit scale);
    ``scaled: false`` re-normalises to a plain cosine."""
    install = "pip install imagebind-packaged (or git+https://github.com/facebookresearch/ImageBind); 'clap' works without it"
    require("imagebind", "the 'imagebind' scorer", install)
    from imagebind import data
    from imagebind.models import imagebind_model
    from imagebind.models.imagebind_model import ModalityType
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = imagebind_model.imagebind_huge(pretrained=True).to(device)
    return ImageBindAudioScorer(model, data, ModalityType, device, scaled)
