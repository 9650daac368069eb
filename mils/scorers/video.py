"""Video-text scorers.

- ``video_frames``: any registered two-tower IMAGE scorer (open_clip, concept, ...) applied to
  uniformly sampled frames; the frame embeddings are averaged (then re-normalised).
- ``xclip``: X-CLIP through transformers (``XCLIPModel``), e.g. ``microsoft/xclip-base-patch32``.

The paper used ViCLIP-L/14, which no library packages; register your own scorer for it (see the
README's "Extending" section) and name it in the config.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from mils import registry
from mils.media import sample_frames
from mils.protocols import Sample
from mils.scorers.hf import TransformersTwoTower, projected
from mils.scorers.weights import unit_rows


class FrameAveragingScorer:
    """Wraps an image scorer: a video's embedding is the mean of its frames' embeddings."""

    def __init__(self, image_scorer, frames: int = 8, frame_choice: str = "centres") -> None:
        self.image_scorer = image_scorer
        self.frames, self.frame_choice = frames, frame_choice
        self.higher_is_better = image_scorer.higher_is_better

    def fingerprint(self) -> str:  # text embeddings are the image scorer's own
        return self.image_scorer.fingerprint()

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for sample in samples:
            frames = [Sample(f"{sample.id}#{i}", f)
                      for i, f in enumerate(sample_frames(sample.media, self.frames, self.frame_choice))]
            out.append(unit_rows(np.asarray(self.image_scorer.embed_samples(frames), np.float32).mean(axis=0)))
        return np.stack(out).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.image_scorer.embed_texts(texts)

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return self.image_scorer.similarity(sample_emb, text_emb)


@registry.register("scorer", "video_frames")
def video_frames_scorer(image_scorer: dict[str, Any] | None = None, frames: int = 8,
                        frame_choice: str = "centres") -> FrameAveragingScorer:
    """``image_scorer``: ``{"name": ..., "options": {...}}`` of a registered image scorer (default
    concept). ``frame_choice``: centres (of equal segments) or official (every N//8-th frame from 0,
    squashed to 224: the MILS code's; the paper profile's)."""
    spec = image_scorer or {"name": "concept"}
    return FrameAveragingScorer(registry.create("scorer", spec["name"], **spec.get("options", {})), frames, frame_choice)


class XClipScorer(TransformersTwoTower):
    def __init__(self, model, processor, identity: str, frames: int = 8, batch_size: int = 32) -> None:
        super().__init__(model, processor, identity, batch_size)
        self.frames = frames

    @torch.inference_mode()
    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        out = []
        for sample in samples:
            frames = sample_frames(sample.media, self.frames)
            pixels = self.processor(videos=[frames], return_tensors="pt")["pixel_values"].to(self.device)
            out.append(torch.nn.functional.normalize(projected(self.model.get_video_features(pixel_values=pixels)),
                                                     dim=-1))
        return torch.cat(out).float().cpu().numpy()


@registry.register("scorer", "xclip")
def xclip_scorer(model: str = "microsoft/xclip-base-patch32", frames: int = 8, device: str | None = None,
                 batch_size: int = 32) -> XClipScorer:
    """An HF id or a local directory holding an XCLIPModel and its XCLIPProcessor."""
    from transformers import XCLIPModel, XCLIPProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    clip = XCLIPModel.from_pretrained(model).to(device)
    frames = clip.config.vision_config.num_frames if hasattr(clip.config.vision_config, "num_frames") else frames
    return XClipScorer(clip, XCLIPProcessor.from_pretrained(model), f"xclip:{model}", frames, batch_size)

