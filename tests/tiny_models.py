"""Tiny models built from the real library classes, with random weights (diffusers-style dummies)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

_CHARS = list(string.ascii_lowercase + string.digits + ".,'-!?")


def clip_tokenizer_files(folder: Path) -> Path:
    """vocab.json + merges.txt for a character-level CLIPTokenizer (no merges, real class)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in _CHARS:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def clip_tokenizer(folder: Path, max_length: int = 32):
    from transformers import CLIPTokenizer

    clip_tokenizer_files(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length,
                         pad_token="<|endoftext|>")


def roberta_tokenizer(folder: Path, max_length: int = 32):
    from transformers import RobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "\u0120": 5}
    for ch in _CHARS:
        vocab.setdefault(ch, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


def tiny_xclip(folder: Path) -> Path:
    """An XCLIPModel + XCLIPProcessor saved to ``folder`` (loadable by the ``xclip`` scorer)."""
    from transformers import (
        VideoMAEImageProcessor,
        XCLIPConfig,
        XCLIPModel,
        XCLIPProcessor,
    )

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "tok")
    config = XCLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8, "num_frames": 4, "mit_hidden_size": 32,
                       "mit_intermediate_size": 64, "mit_num_hidden_layers": 1, "mit_num_attention_heads": 2},
        projection_dim=32, prompt_layers=1, prompt_num_attention_heads=2,
    )
    XCLIPModel(config).save_pretrained(folder)
    processor = XCLIPProcessor(image_processor=VideoMAEImageProcessor(size={"shortest_edge": 32},
                                                                      crop_size={"height": 32, "width": 32}),
                               tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


def tiny_clap(folder: Path) -> Path:
    """A ClapModel + ClapProcessor (HTSAT audio tower, RoBERTa text tower) saved to ``folder``."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    torch.manual_seed(0)
    tokenizer = roberta_tokenizer(folder / "tok")
    config = ClapConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 40,
                     "projection_dim": 16},
        audio_config={"spec_size": 64, "num_mel_bins": 64, "window_size": 4, "patch_size": 4, "patch_stride": [4, 4],
                      "hidden_size": 64, "depths": [1, 1], "num_attention_heads": [2, 2],
                      "patch_embeds_hidden_size": 32, "projection_dim": 16, "num_classes": 4},
        projection_dim=16,
    )
    ClapModel(config).save_pretrained(folder)
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=16000, max_length_s=1, fft_window_size=256,
                                     hop_length=320, truncation="rand_trunc")
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _tiny_unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8,
                                in_channels=in_channels, out_channels=4, cross_attention_dim=16, norm_num_groups=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=4)


def _tiny_sd_parts(folder: Path, in_channels: int = 4) -> dict:
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "tok", max_length=16)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=1, num_attention_heads=2,
                                                max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                                                pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              steps_offset=1)
    return {"unet": _tiny_unet(in_channels), "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": scheduler, "safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def tiny_stable_diffusion(folder: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline(**_tiny_sd_parts(folder)).save_pretrained(folder)
    return folder


def tiny_instruct_pix2pix(folder: Path) -> Path:
    from diffusers import StableDiffusionInstructPix2PixPipeline

    StableDiffusionInstructPix2PixPipeline(**_tiny_sd_parts(folder, in_channels=8)).save_pretrained(folder)
    return folder


def tiny_pickscore(folder: Path) -> Path:
    """A CLIPModel + CLIPProcessor standing in for PickScore (same classes, random weights)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "tok")
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 32},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
