"""Vision-language captioners, the baselines the field compares MILS with (a registry kind of
their own: ``captioner``): BLIP-2, LLaVA-1.5, SmolVLM and Qwen2-VL through transformers.

One class does them all: the model's processor builds the inputs (a chat template with an image
slot for the chat models, a plain text prompt for BLIP-2), batches are left-padded, decoding is
greedy, and the prompt's tokens are cut from the output. Greedy decoding with left padding makes a
row's caption independent of its batch mates (tested on tiny models of the real classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from mils.protocols import Reply, TokenUsage
from mils.registry import register


class VLMCaptioner:
    """``caption(images) -> captions``, each a :class:`Reply` carrying its prompt and generated tokens
    (as a generator's replies do: ``usage_of(caption)``)."""

    def __init__(self, model, processor, prompt: str = "", chat: bool = True, max_new_tokens: int = 40) -> None:
        self.model, self.processor = model.eval(), processor
        self.prompt, self.chat, self.max_new_tokens = prompt, chat, max_new_tokens
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def _text(self, prompt: str | None = None) -> str:
        prompt = self.prompt if prompt is None else prompt
        if not self.chat:
            return prompt
        message = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(message, add_generation_prompt=True)

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        return self.generate(images, [self.prompt] * len(images))

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        """One question per image (POPE's yes/no probes), in the model's question format."""
        prompts = [f"{q} Answer yes or no." if self.chat else f"Question: {q} Answer:" for q in questions]
        return self.generate(images, prompts)

    @torch.inference_mode()
    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[Reply]:
        """The model's reply to each (image, prompt) pair: greedy, the prompt cut off, with its usage."""
        if not images:
            return []
        images = [im.convert("RGB") for im in images]
        batch_images = [[im] for im in images] if self.chat else images
        enc = self.processor(images=batch_images, text=[self._text(p) for p in prompts], return_tensors="pt",
                             padding=True).to(self.model.device)
        if "pixel_values" in enc and self.model.dtype != torch.float32:
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                  pad_token_id=self.processor.tokenizer.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        pad = self.processor.tokenizer.pad_token_id
        prompt_tokens = enc["attention_mask"].sum(-1).tolist()
        usage = [TokenUsage(int(n), int((row != pad).sum())) for n, row in zip(prompt_tokens, new)]
        return [Reply(t.strip(), u) for t, u in zip(self.processor.batch_decode(new, skip_special_tokens=True), usage)]


def load_vlm(model_class: str, model: str, prompt: str, chat: bool, device: str | None = None,
             dtype: str = "auto", max_new_tokens: int = 40) -> VLMCaptioner:
    """``model``: an HF id or a local directory. bf16 on a GPU, float32 on a CPU, unless ``dtype``."""
    import transformers

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                   "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    lm = getattr(transformers, model_class).from_pretrained(model, dtype=torch_dtype).to(device)
    processor = transformers.AutoProcessor.from_pretrained(model)
    return VLMCaptioner(lm, processor, prompt, chat, max_new_tokens)


CAPTION_PROMPT = "Describe this image in one short sentence."


@register("captioner", "blip2")
def blip2(model: str = "Salesforce/blip2-opt-2.7b", prompt: str = "a photo of", **options) -> VLMCaptioner:
    """BLIP-2 continues a plain text prompt (its captioning setting: "a photo of")."""
    return load_vlm("Blip2ForConditionalGeneration", model, prompt, chat=False, **options)


@register("captioner", "llava")
def llava(model: str = "llava-hf/llava-1.5-7b-hf", prompt: str = CAPTION_PROMPT, **options) -> VLMCaptioner:
    return load_vlm("LlavaForConditionalGeneration", model, prompt, chat=True, **options)


@register("captioner", "smolvlm")
def smolvlm(model: str = "HuggingFaceTB/SmolVLM-Instruct", prompt: str = CAPTION_PROMPT, **options) -> VLMCaptioner:
    return load_vlm("AutoModelForImageTextToText", model, prompt, chat=True, **options)


@register("captioner", "qwen2-vl")
def qwen2_vl(model: str = "Qwen/Qwen2-VL-2B-Instruct", prompt: str = CAPTION_PROMPT, **options) -> VLMCaptioner:
    return load_vlm("Qwen2VLForConditionalGeneration", model, prompt, chat=True, **options)
