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


def gpt2_char_tokenizer(folder: Path, image_token: str = "<image>"):
    """A character-level GPT2Tokenizer (real class, no merges) with an image placeholder token."""
    from transformers import GPT2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "\u0120": 3, "\u010a": 4}
    for ch in _CHARS + list(string.ascii_uppercase + ":"):
        vocab.setdefault(ch, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = GPT2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<pad>",
                              eos_token="</s>", bos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": [image_token]})
    return tokenizer


def tiny_blip2(folder: Path) -> Path:
    """Blip2ForConditionalGeneration (ViT, Q-Former, OPT) + Blip2Processor saved to ``folder``."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    torch.manual_seed(0)
    tokenizer = gpt2_char_tokenizer(folder / "tok")
    config = Blip2Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        qformer_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                        "encoder_hidden_size": 32, "vocab_size": 100},
        text_config={"model_type": "opt", "vocab_size": len(tokenizer), "hidden_size": 32, "ffn_dim": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "word_embed_proj_dim": 32,
                     "max_position_embeddings": 128, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1},
        num_query_tokens=4, image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    Blip2ForConditionalGeneration(config).save_pretrained(folder)
    Blip2Processor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer,
                   num_query_tokens=4).save_pretrained(folder)
    return folder


LLAVA_CHAT = ("{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
              "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} ASSISTANT:"
              "{% endif %}")


def tiny_llava(folder: Path) -> Path:
    """LlavaForConditionalGeneration (CLIP vision tower, Llama) + LlavaProcessor with a chat template."""
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    torch.manual_seed(0)
    tokenizer = gpt2_char_tokenizer(folder / "tok")
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
                       "projection_dim": 32},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
                     "max_position_embeddings": 256, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1},
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-1)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                   tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=LLAVA_CHAT,
                   image_token="<image>", num_additional_image_tokens=1).save_pretrained(folder)
    return folder


QWEN_CHAT = ("{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
             "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
             "{% if add_generation_prompt %} ASSISTANT:{% endif %}")


def tiny_qwen2_vl(folder: Path) -> Path:
    """Qwen2VLForConditionalGeneration (M-RoPE, 2x2 patch merging) + Qwen2VLProcessor."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    torch.manual_seed(0)
    tokenizer = gpt2_char_tokenizer(folder / "tok", image_token="<|image_pad|>")
    special = ["<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"]
    tokenizer.add_special_tokens({"additional_special_tokens": special})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    config = Qwen2VLConfig(
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]}, "pad_token_id": 0,
                     "eos_token_id": 1, "bos_token_id": 1},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    images = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56 * 4, patch_size=14, merge_size=2,
                                   temporal_patch_size=2)
    Qwen2VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                     chat_template=QWEN_CHAT).save_pretrained(folder)
    return folder


SMOLVLM_CHAT = ("{% for m in messages %}User:{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}"
                "{{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
                "{% if add_generation_prompt %}Assistant:{% endif %}")


def tiny_smolvlm(folder: Path) -> Path:
    """SmolVLM's classes (Idefics3ForConditionalGeneration + Idefics3Processor), no image splitting."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    torch.manual_seed(0)
    tokenizer = gpt2_char_tokenizer(folder / "tok")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<fake_token_around_image>", "<global-img>",
                                                                "<end_of_utterance>"]})
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
                     "max_position_embeddings": 1024, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    images = Idefics3ImageProcessor(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                    do_image_splitting=False)
    Idefics3Processor(image_processor=images, tokenizer=tokenizer, chat_template=SMOLVLM_CHAT,
                      image_seq_len=4).save_pretrained(folder)
    return folder
