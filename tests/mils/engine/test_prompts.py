import pytest

from mils.config.task_specs import get_task
from mils.config.tasks import BUILTIN
from mils.engine.prompts import COMBINE_PROMPT, format_score, get_template
from mils.registry import UnknownComponentError


def test_scores_are_written_best_first_with_three_decimals():
    text = get_task("image_captioning").template.render([("a cat", 0.31234), ("a dog", 0.2)], requested=50)
    assert "0.312: a cat\n0.200: a dog" in text
    assert "Generate additional 50 short image descriptions" in text
    assert "up to 10 words" in text


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("prompts", ["suite", "official"])
def test_every_template_renders_without_leftover_slots(name, prompts):
    template = get_task(name).template_for(prompts)
    extra = {"init_description": "a red bus"} if name == "text_to_image" else {}
    score = (0.1, 0.2) if name == "style_transfer" else 0.5
    text = template.render([("x y", score)], requested=7, **extra)
    assert "{" not in text and "}" not in text, name
    assert "7" in text and "x y" in text


def test_style_transfer_shows_both_scores():
    template = get_task("style_transfer").template
    assert "0.100, 0.200: paint it" in template.render([("paint it", (0.1, 0.2))], 3)
    assert format_score((1, 2.5)) == "1.000, 2.500"


def test_combine_prompt_has_exactly_the_slots_combine_fills():
    import re

    assert sorted(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", COMBINE_PROMPT)) == ["audio_description", "image_description"]


def test_unknown_template_lists_known_ones():
    get_task("image_captioning")  # the built-in tasks register their prompts
    with pytest.raises(UnknownComponentError, match="image_captioning.*Did you mean 'image_captioning'"):
        get_template("image_captionin")
