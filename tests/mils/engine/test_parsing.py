import re

import pytest

from mils.engine.parsing import annotate_reply, normalise, parse_candidates

# Replies in the shapes SmolLM2 and Llama actually produce for the MILS prompt.
MESSY = """Here are 8 new short image descriptions:

1. A tabby cat sleeping on a sofa.
2) "A ginger cat on a windowsill" - this adds a setting
**3.** A cat with green eyes (close-up)
4. 0.167: A kitten playing with yarn
- A: A cat under a blanket
* Description 6: A black cat in the snow
7. a tabby cat sleeping on a sofa
8. A cat on a sofa
<|eot_id|>
I hope these descriptions help!"""


def test_messy_reply_yields_clean_candidates():
    assert parse_candidates(MESSY) == [
        "A tabby cat sleeping on a sofa",
        "A ginger cat on a windowsill",
        "A cat with green eyes",
        "A kitten playing with yarn",
        "A cat under a blanket",
        "A black cat in the snow",
        "A cat on a sofa",
    ]


def test_candidates_already_in_the_prompt_are_dropped():
    found = parse_candidates(MESSY, exclude=["a cat on a sofa.", "A KITTEN playing with yarn"])
    assert "A cat on a sofa" not in found and "A kitten playing with yarn" not in found
    assert "A black cat in the snow" in found


def test_reply_with_no_usable_line_gives_nothing():
    assert parse_candidates("Sure! Here are some descriptions:\n\n") == []
    assert parse_candidates("") == []
    assert parse_candidates("1. ...\n2. 0.5\n3. !!") == []


def test_plain_lines_are_used_when_no_line_has_a_counter():
    assert parse_candidates("Sure, here you go:\nA dog on a beach\nA dog in the sea") == [
        "A dog on a beach",
        "A dog in the sea",
    ]


def test_list_lines_win_over_prose_lines():
    reply = "The image shows a cat.\n1. A cat on a mat\n2. A cat in a box"
    assert parse_candidates(reply) == ["A cat on a mat", "A cat in a box"]


def test_run_on_lines_over_the_word_limit_are_dropped():
    long = "1. " + " ".join(["word"] * 30)
    assert parse_candidates(long + "\n2. a short one", max_words=20) == ["a short one"]


def test_inner_periods_survive():
    assert parse_candidates("1. Mr. Smith's dog, i.e. a pug.") == ["Mr. Smith's dog, i.e. a pug"]


@pytest.mark.parametrize("a, b", [("A dog.", "a dog"), ('"A  dog!"', "a dog"), ("A DOG ", "a dog")])
def test_normalise_ignores_case_spacing_and_edge_punctuation(a, b):
    assert normalise(a) == normalise(b)


def _prompt() -> str:
    from mils.config.task_specs import get_task

    return get_task("image_captioning").template.render([("a photo of a tiger cat.", 0.553)], 10)


@pytest.mark.parametrize("junk", [
    "Higher score means that the image description characterizes the image better",  # echoed instruction
    "1. Be concrete and try to find elements that are unique to this image.",         # echoed, with a counter
    "[0.286: Photo taken in a beach location]",                                        # bracketed scored line
    "3. [0.41, A dog on the grass]",
    "A. Black and white photo",                                                        # lettered options
    "B) A cat on a sofa",
    "The score is 0.280, which means that the description is accurate.",              # meta sentences
    "This gives a higher score to the second description",
    "The image description is",                                                        # dangling fragments
    "4. A photo of a dog with",
])
def test_junk_lines_are_not_candidates(junk):
    reply = f"{junk}\n2. A red bicycle leaning on a wall"
    assert parse_candidates(reply, prompt=_prompt()) == ["A red bicycle leaning on a wall"]


def test_real_captions_survive_the_junk_filters():
    reply = ("1. A photo of a tiger cat in its usual surroundings.\n2. A score board at a basketball game\n"
             "3. A man scores a goal on a sunny pitch")
    assert parse_candidates(reply, prompt=_prompt()) == [
        "A photo of a tiger cat in its usual surroundings", "A score board at a basketball game",
        "A man scores a goal on a sunny pitch"]


def test_real_smollm2_replies_leave_no_junk():
    """Replies of the real SmolLM2-135M to our meta-prompt: 24 from a pipeline run on the sample
    photos, 24 from `mils caption` on six scikit-image photos (4 steps, keep 5, 10 requested), 16
    to the captioning prompt with five shown captions (200 tokens; judgements such as "X is a
    high-quality image description", "Original/Modified description:" labels, narratives)."""
    import json
    from pathlib import Path

    from mils.engine.parsing import prompt_lines

    replies = json.loads((Path(__file__).parent / "data" / "smollm2_replies.json").read_text())
    prompt = _prompt()
    echoes = prompt_lines(prompt)
    found = [c for r in replies for c in parse_candidates(r["reply"], prompt=prompt)]
    assert found, "the replies hold real captions"
    for candidate in found:
        assert normalise(candidate) not in echoes
        assert "score" not in candidate.lower() and not candidate.startswith(("[", "#"))
        assert candidate.split()[-1].lower() not in {"is", "the", "a", "of", "with", "your"}
        assert not re.match(r"^[\d.]+[.:]\s", candidate), candidate  # no counter or score left in front
        # no talk to the user ("... a more detailed description of your image") and no run-on paragraph
        assert not re.search(r"\byour\b|here'?s|great example", candidate, re.I), candidate
        assert len(re.findall(r"[.!?]\s+[A-Z]", candidate)) < 2, candidate
        assert not re.match(r"^[A-Z][.)]\s", candidate), candidate  # no lettered option ("J. Higher")
        assert len(candidate.split()) >= 2, candidate  # no one-word line ("Photo")
        assert not re.search(r"\bdescription\b", candidate, re.I), candidate  # talk about descriptions
        assert not candidate.startswith("("), candidate


def test_titles_fragments_asides_and_one_word_lines_are_not_captions():
    """The classes an audit found the parser still kept from real SmolLM2 replies: 19 titles like
    "Titanic - 7" in one reply, fragments ("A person wearing"), bracketed asides, one-word lines."""
    reply = "\n".join(["1. Titanic - 7", "2. Scene 2 - 3", "3. A person wearing", "4. [i.e. close-up of the face",
                       "5. (Note: these are guesses)", "6. Photo", "7. A ship on the open sea",
                       "8. A man - wearing a hat - rides a horse", "9. [a palace with a bell tower]",
                       "10. A view of Route 66 - 1950s"])
    assert parse_candidates(reply) == ["A ship on the open sea", "A man - wearing a hat - rides a horse",
                                       "a palace with a bell tower", "A view of Route 66 - 1950s"]


def test_framing_around_a_caption_is_removed():
    reply = "Your image description is a photo of a military hat\nThe image is a close-up of a mushroom."
    assert parse_candidates(reply, prompt=_prompt()) == ["a photo of a military hat", "a close-up of a mushroom"]
    bracketed = "[4. a photo of a palace with a bell tower]\n[5. 0.61: a palace]"  # real SmolLM2 lines
    assert parse_candidates(bracketed, prompt=_prompt()) == ["a photo of a palace with a bell tower", "a palace"]


def test_annotated_reply_marks_exactly_the_parsed_lines():
    reply = ("Here are new descriptions:\n\n1. **A cat on a sofa.**\n2. a dog in a park\n"
             "3. A cat on a sofa\n- Score: 0.5 explains why\n4. a dog in a park")
    parsed = parse_candidates(reply)
    lines = annotate_reply(reply, parsed)
    assert [line for line, _ in lines] == [line for line in reply.splitlines() if line.strip()]
    assert [kept for _, kept in lines] == [False, True, True, False, False, False]
    assert sum(kept for _, kept in lines) == len(parsed)
    assert annotate_reply(reply, []) == [(line, False) for line, _ in lines]  # nothing new: all dropped


def test_the_official_cleanup_is_transformers_own_rules_and_the_paper_profile_applies_it(fake_scorer, fake_bank):
    """The MILS code read replies through transformers 4.x's pipeline, which cleaned up tokenization
    spaces; transformers still carries the rules (clean_up_tokenization)."""
    from transformers import PreTrainedTokenizerBase

    from mils.config.run_config import build_config
    from mils.config.task_specs import get_task
    from mils.engine.loop import LoopOptions, Optimiser
    from mils.engine.parsing import official_cleanup
    from mils.protocols import Sample
    from tests.fakes import FakeGenerator

    text = "1. a dog , a cat . isn't it ? it 's you 're we 've I 'm don 't ! can n't ' quoted ' x"
    assert official_cleanup(text) == PreTrainedTokenizerBase.clean_up_tokenization(None, text)
    assert official_cleanup("1. A man , in a hat .") == "1. A man, in a hat."
    bank = {"bank": {"builtin": "imagenet-templates"}}
    assert build_config("paper", bank).loop.cleanup == "official" and build_config("offline", {}).loop.cleanup == "none"

    class Spaced(FakeGenerator):
        def generate(self, prompts, seeds):
            return ["1. a red cat , on a sofa .\n2. a dog 's ball"] * len(prompts)

    def first_candidates(cleanup):
        opt = Optimiser(Spaced(), fake_scorer, get_task("image_captioning").template, fake_bank,
                        fake_scorer.embed_texts(fake_bank), LoopOptions(steps=1, keep=3, requested=2, cleanup=cleanup,
                                                                         max_words=None))
        return opt.run([Sample("s", "red cat sofa")])[0]

    cleaned, raw = first_candidates("official"), first_candidates("none")
    assert {t for t, _ in cleaned.trace[-1].new} == {"a red cat, on a sofa", "a dog's ball"}  # the parser drops the "."
    assert "a dog 's ball" in {t for t, _ in raw.trace[-1].new}
    assert cleaned.raw_replies == raw.raw_replies  # the reply as the LLM wrote it is kept
