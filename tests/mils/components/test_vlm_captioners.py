"""The VLM captioners on tiny random-weight models of the real transformers classes."""

import numpy as np
import pytest
from PIL import Image

from mils import registry
from mils.components.vlm_captioners import load_vlm
from mils.protocols import usage_of

FAMILIES = {"blip2": ("Blip2ForConditionalGeneration", False), "llava": ("LlavaForConditionalGeneration", True),
            "qwen2-vl": ("Qwen2VLForConditionalGeneration", True), "smolvlm": ("Idefics3ForConditionalGeneration", True)}


@pytest.fixture(scope="module")
def tiny_vlm_dirs(tmp_path_factory):
    from tests.tiny_models import tiny_blip2, tiny_llava, tiny_qwen2_vl, tiny_smolvlm

    root = tmp_path_factory.mktemp("vlm")
    return {"blip2": tiny_blip2(root / "blip2"), "llava": tiny_llava(root / "llava"),
            "qwen2-vl": tiny_qwen2_vl(root / "qwen2-vl"), "smolvlm": tiny_smolvlm(root / "smolvlm")}


def images(n, size=(50, 40)):
    return [Image.fromarray((np.random.RandomState(i).rand(size[1], size[0], 3) * 255).astype("uint8"))
            for i in range(n)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_caption_does_not_depend_on_its_batch_mates(family, tiny_vlm_dirs):
    captioner = registry.create("captioner", family, model=str(tiny_vlm_dirs[family]), prompt="describe it",
                                max_new_tokens=6, device="cpu")  # the registered factory: its class, its template
    assert type(captioner.model).__name__ == FAMILIES[family][0]
    assert captioner.chat == FAMILIES[family][1]
    assert captioner.processor.tokenizer.padding_side == "left"
    batch = captioner.caption(images(3) + [images(1, (20, 60))[0]])
    assert len(batch) == 4 and all(isinstance(c, str) for c in batch)
    for n, image in enumerate(images(3)):
        assert captioner.caption([image]) == [batch[n]]
    assert all(0 < u.generated <= 6 and u.prompt > 0 for u in map(usage_of, batch))
    assert captioner.caption([]) == []


def test_prompt_templates(tiny_vlm_dirs):
    blip = load_vlm("Blip2ForConditionalGeneration", str(tiny_vlm_dirs["blip2"]), "a photo of", chat=False)
    assert blip._text() == "a photo of"  # BLIP-2 continues a plain prompt
    llava = load_vlm("LlavaForConditionalGeneration", str(tiny_vlm_dirs["llava"]), "Describe it.", chat=True)
    assert llava._text() == "USER: <image>\nDescribe it. ASSISTANT:"  # the model's own chat template
    # the caption is only what the model generated: no prompt text in it
    assert not any("USER" in c or "Describe" in c for c in llava.caption(images(2)))


def test_every_family_is_registered_with_real_defaults():
    assert {"blip2", "llava", "smolvlm", "qwen2-vl"} <= set(registry.known("captioner"))
    import inspect

    defaults = {name: inspect.signature(registry.get_factory("captioner", name)).parameters["model"].default
                for name in ("blip2", "llava", "smolvlm", "qwen2-vl")}
    assert defaults == {"blip2": "Salesforce/blip2-opt-2.7b", "llava": "llava-hf/llava-1.5-7b-hf",
                        "smolvlm": "HuggingFaceTB/SmolVLM-Instruct", "qwen2-vl": "Qwen/Qwen2-VL-2B-Instruct"}
