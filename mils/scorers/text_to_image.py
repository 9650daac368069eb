"""Text-to-image prompt rewriting: every candidate prompt is rendered by a diffusers pipeline
(same seed for every candidate) and the image is scored with PickScore against the ORIGINAL
prompt, the sample. Rendered images are cached by prompt, so kept candidates are never
rendered again, and the best image of every step can be saved afterwards.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from mils.protocols import Sample
from mils.registry import register
from mils.scorers.hf import projected


def load_pipeline(model: str, device: str | None = None, dtype: str = "auto", pipeline_class: str | None = None):
    """Any diffusers pipeline id or local directory (DiffusionPipeline picks the class)."""
    import diffusers

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":  # fp16 on a GPU (diffusers warns that FLUX in fp16 differs from bf16: the paper uses bf16)
        dtype = "float16" if device.startswith("cuda") else "float32"
    torch_dtype = getattr(torch, dtype)
    cls = getattr(diffusers, pipeline_class) if pipeline_class else diffusers.DiffusionPipeline
    pipe = cls.from_pretrained(model, dtype=torch_dtype)
    if hasattr(pipe, "safety_checker"):
        pipe.safety_checker = None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


class Renderer:
    """Prompt -> image with one fixed seed; each prompt is rendered once."""

    def __init__(self, pipeline, seed: int = 0, steps: int = 30, guidance: float | None = None,
                 size: int | None = None, batch_size: int = 4, image_kwargs: dict | None = None) -> None:
        self.pipeline, self.seed, self.steps, self.guidance = pipeline, seed, steps, guidance
        self.size, self.batch_size, self.image_kwargs = size, batch_size, image_kwargs or {}
        self.cache: dict[str, Image.Image] = {}
        self.renders = 0

    def _call(self, prompts: list[str], **kwargs) -> list[Image.Image]:
        device = self.pipeline.device
        generators = [torch.Generator(device="cpu" if device.type == "mps" else device).manual_seed(self.seed)
                      for _ in prompts]
        options = {"num_inference_steps": self.steps, "generator": generators, **self.image_kwargs, **kwargs}
        if self.guidance is not None:
            options["guidance_scale"] = self.guidance
        if self.size:
            options.update(height=self.size, width=self.size)
        return self.pipeline(prompts, **options).images

    def render(self, prompts: Sequence[str], **kwargs) -> list[Image.Image]:
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for prompt, image in zip(chunk, self._call(chunk, **kwargs)):
                self.cache[prompt] = image
            self.renders += len(chunk)
        return [self.cache[p] for p in prompts]


class PickScore:
    """PickScore (Kirstain et al., 2023): a CLIP model fine-tuned on human preferences;
    reward = logit_scale * cos(text, image), or the plain cosine with ``scaled=False`` (what the
    official MILS code shows the LLM: ~0.22 rather than ~22)."""

    def __init__(self, model, processor, scaled: bool = True) -> None:
        self.model, self.processor, self.scaled = model.eval(), processor, scaled
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def __call__(self, prompt: str, images: Sequence[Image.Image]) -> np.ndarray:
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        text = self.processor(text=[prompt], return_tensors="pt", padding=True, truncation=True).to(self.device)
        image_emb = torch.nn.functional.normalize(projected(self.model.get_image_features(pixel_values=pixels)), dim=-1)
        text_emb = torch.nn.functional.normalize(projected(self.model.get_text_features(
            input_ids=text["input_ids"], attention_mask=text["attention_mask"])), dim=-1)
        scale = self.model.logit_scale.exp() if self.scaled else 1.0
        return (scale * image_emb @ text_emb.T).squeeze(-1).float().cpu().numpy()


class TextToImageScorer:
    """CandidateScorer: render each candidate prompt, reward it against the sample's prompt."""

    higher_is_better = True

    def __init__(self, renderer: Renderer, reward: PickScore) -> None:
        self.renderer, self.reward = renderer, reward

    @property
    def images_made(self) -> int:
        """Renders so far: the cost ledger's ``renders``."""
        return self.renderer.renders

    def image_of(self, sample: Sample, text: str) -> Image.Image:
        return self.renderer.render([text])[0]

    def score(self, samples: Sequence[Sample], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        out = []
        for sample, texts in zip(samples, candidates):
            if not texts:
                out.append(np.zeros(0, np.float32))
                continue
            out.append(self.reward(str(sample.media), self.renderer.render(texts)))
        return out


def load_pickscore(model: str, processor: str, device: str | None = None, scaled: bool = True) -> PickScore:
    from transformers import AutoModel, AutoProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return PickScore(AutoModel.from_pretrained(model).to(device), AutoProcessor.from_pretrained(processor), scaled)


PICKSCORE = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


@register("scorer", "pickscore_t2i")
def pickscore_t2i_scorer(
    pipeline: str = "black-forest-labs/FLUX.1-schnell",
    reward: str = PICKSCORE,
    reward_processor: str | None = None,
    seed: int = 0, steps: int = 4, guidance: float | None = 0.0, size: int | None = 512,
    device: str | None = None, batch_size: int = 4, dtype: str = "auto", max_sequence_length: int | None = None,
    scaled: bool = True,
) -> TextToImageScorer:
    """Defaults: FLUX.1-schnell (4 steps, no guidance) rendered at 512 px, PickScore v1 (whose
    processor is LAION's CLIP-H one; a local reward directory is its own processor). The paper
    profile sets the official code's settings: bf16, 256 px, ``max_sequence_length`` 256, seed
    2024, the plain cosine (``scaled: false``)."""
    if reward_processor is None:
        reward_processor = PICKSCORE_PROCESSOR if reward == PICKSCORE else reward
    extra = {"max_sequence_length": max_sequence_length} if max_sequence_length else {}
    renderer = Renderer(load_pipeline(pipeline, device, dtype), seed, steps, guidance, size, batch_size, extra)
    return TextToImageScorer(renderer, load_pickscore(reward, reward_processor, device, scaled))
