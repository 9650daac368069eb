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
    from transformers import VideoMAEImageProcessor, XCLIPConfig, XCLIPModel, XCLIPProcessor

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
