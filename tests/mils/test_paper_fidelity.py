"""The `paper` profile does what the official MILS code (facebookresearch/MILS at 2843135) does;
each of our deliberate differences is an option (docs/paper_differences.md)."""

import random
from pathlib import Path

import pytest

from evaluation.datasets import Dataset, EvalSample
from mils.config import build_config
from mils.loop import LoopOptions, Optimiser
from mils.official_prompts import OFFICIAL_FILES, OFFICIAL_PROMPTS
from mils.parsing import parse_candidates, parse_official
from mils.prompts import template_for

RELEASE_PROMPTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "mils_release" / "prompts"
LLAMA_REPLY = """Here are 5 new image descriptions:

1. A dog running on a sandy beach (at sunset)
2. A man - wearing a hat - rides a horse!
3. A dog running on a sandy beach
4. a dog running on a sandy beach.
**5.** A bold caption in markdown
10. Two cats on a sofa
- A bulleted caption
Note: these descriptions focus on the main objects."""


def test_the_official_parser_keeps_what_the_official_code_keeps():
    assert parse_official(LLAMA_REPLY) == [
        "A dog running on a sandy beach",  # cut at "(", stripped
        "A man - wearing a hat - rides a horse",  # dashes kept, "!" removed
        "a dog running on a sandy beach.",  # exact dedup: case and a period make it another text
        "Two cats on a sofa",  # a two-digit counter
    ]  # not markdown-bold counters, bullets or the note: no ". " in their first five characters
    assert parse_official("Ok. Here they are") == ["Here they are"]  # the official heuristic, quirks included
    assert parse_official("no counters at all\njust prose") == []


def test_the_robust_parser_keeps_dashes_and_whole_words():
    reply = ("1. Notebook on a desk\n2. Surely the happiest dog\n3. A man - wearing a hat - rides a horse\n"
             "4. A red car - this captures the colour\n5. A cat [on] a mat\n6. A dog (happy) [0.52]")
    assert parse_candidates(reply) == ["Notebook on a desk", "Surely the happiest dog",
                                       "A man - wearing a hat - rides a horse", "A red car", "A cat [on] a mat", "A dog"]
    long_prompt = "1. " + " ".join(["word"] * 90)
    assert parse_candidates(long_prompt) == [] and len(parse_candidates(long_prompt, max_words=None)) == 1


class _Replies:
    """A generator that always answers with the same reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def generate(self, prompts, seeds):
        return [self.reply] * len(prompts)


@pytest.mark.parametrize("dedup, parser, expected", [("normalised", "robust", 1), ("exact", "robust", 2),
                                                      ("exact", "official", 2)])
def test_dedup_decides_whether_case_variants_are_new_candidates(dedup, parser, expected, fake_scorer, text_samples):
    generator = _Replies("1. red cat sofa\n2. Red cat sofa.\n")
    options = LoopOptions(steps=1, keep=3, requested=2, dedup=dedup, parser=parser)
    bank = ["blue boat", "green tree", "old house"]
    result = Optimiser(generator, fake_scorer, template_for("image_captioning"), bank, fake_scorer.embed_texts(bank),
                       options).run(text_samples[:1])[0]
    assert result.history[1].new_unique == expected


def test_the_1k_subset_is_the_official_draw():
    ids = [str(391895 + 7 * i) for i in range(5000)]  # a Karpathy-like test split, in file order
    data = Dataset("karpathy", [EvalSample(i, Path(f"{i}.jpg"), ("ref",)) for i in ids])
    random.seed(2024)
    official = random.sample(ids, 1000)  # what main_image_captioning.py does for --ablation
    subset = data.subsample(1000, 2024, "official")
    assert {s.id for s in subset.samples} == set(official)
    assert [s.id for s in subset.samples] == [i for i in ids if i in set(official)]  # in file order
    assert {s.id for s in data.subsample(1000, 2024).samples} != set(official)  # the numpy draw differs


@pytest.mark.skipif(not RELEASE_PROMPTS.is_dir(), reason="the MILS release prompts are not here (../shared/data)")
@pytest.mark.parametrize("task", sorted(OFFICIAL_FILES))
def test_the_paper_prompts_are_the_official_files_byte_for_byte(task):
    official = (RELEASE_PROMPTS / OFFICIAL_FILES[task]).read_bytes()
    assert OFFICIAL_PROMPTS[task].encode() == official
    assert template_for(task, "official").text.encode() == official
    assert template_for(task, str(RELEASE_PROMPTS)).text.encode() == official  # --prompts DIR


def test_an_official_template_is_filled_the_official_way(tmp_path):
    (tmp_path / "image_generation.txt").write_text("Start {init_description}\n\n{descriptions}\nMake {requested_number}. {keep}")
    template = template_for("text_to_image", str(tmp_path))
    text = template.render([("a red cat", 0.5), ("a cat", 0.25)], 7, init_description="cat")
    # every example line ends in a newline; other braces are left as they are
    assert text == "Start cat\n\n0.500: a red cat\n0.250: a cat\n\nMake 7. {keep}"
    with pytest.raises(Exception, match="image_captioning_shorter.txt"):
        template_for("image_captioning", str(tmp_path))


def test_paper_profile_defaults_are_the_official_settings():
    config = build_config("paper", {"bank": {"path": "bank.txt"}})
    assert config.generator.max_new_tokens == 3000
    assert (config.loop.seed, config.loop.parser, config.loop.dedup) == (2024, "official", "exact")
    assert config.prompts == "official" and (config.dataset.seed, config.dataset.sampler) == (2024, "official")
    t2i = build_config("paper", task="text_to_image")
    assert t2i.loop.max_words is None
    assert t2i.scorer.options == {"pipeline": "black-forest-labs/FLUX.1-schnell", "dtype": "bfloat16", "size": 256,
                                  "max_sequence_length": 256, "seed": 2024, "guidance": 7.0, "scaled": False}


def test_new_options_at_their_defaults_keep_older_result_keys():
    offline = build_config("offline")
    explicit = build_config("offline", {"loop": {"parser": "robust", "dedup": "normalised"}, "prompts": "suite",
                                        "dataset": {"sampler": "numpy"}})
    assert explicit.result_key() == offline.result_key()
    for change in ({"loop": {"parser": "official"}}, {"loop": {"dedup": "exact"}}, {"prompts": "official"},
                   {"dataset": {"sampler": "official"}}):
        assert build_config("offline", change).result_key() != offline.result_key(), change


def test_the_official_style_score_uses_the_first_five_convolutions_before_relu():
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torchvision import transforms
    from torchvision.models.vgg import cfgs, make_layers

    from mils.scorers.style import OfficialStyleDistance

    torch.manual_seed(0)
    features = make_layers(cfgs["E"])  # VGG19's convolutional stack, fixed random weights
    rng = np.random.default_rng(0)
    style, content, edit = (Image.fromarray(rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)) for _ in range(3))
    score = OfficialStyleDistance(features, style, content)([edit])[0]

    load = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(256), transforms.ToTensor(),
                               transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def convs(image, after_relu=False):  # conv1_1, conv1_2, conv2_1, conv2_2, conv3_1 = features[0, 2, 5, 7, 10]
        x, out = load(image)[None], []
        with torch.no_grad():
            for i, module in enumerate(features[:12]):
                x = torch.relu(x) if isinstance(module, torch.nn.ReLU) else module(x)
                if i in ((1, 3, 6, 8, 11) if after_relu else (0, 2, 5, 7, 10)):
                    out.append(x)
        return out

    def gram(f):
        return f[0].flatten(1) @ f[0].flatten(1).T / f.numel()

    def expected(after_relu):
        e, s, c = convs(edit, after_relu), convs(style, after_relu), convs(content, after_relu)
        style_loss = sum(F.mse_loss(gram(a), gram(b)) for a, b in zip(e, s))
        return np.array([1000 * float(style_loss), float(F.mse_loss(e[3], c[3]))])

    assert np.allclose(score, expected(False), rtol=1e-4)
    assert not np.allclose(score, expected(True), rtol=1e-2)  # the layer choice matters


def test_raw_evaluation_scores_the_strings_as_they_are_and_is_the_paper_setting_for_audio_and_video():
    from evaluation.caption_metrics import caption_metrics

    predictions, references = {"a": "A Dog runs."}, {"a": ["a dog runs"]}
    ptb = caption_metrics(predictions, references, ["BLEU"], resamples=10)
    raw = caption_metrics(predictions, references, ["BLEU"], resamples=10, tokenize="raw")
    assert ptb.corpus["BLEU-1"].value == pytest.approx(1.0, abs=1e-6)
    assert raw.corpus["BLEU-1"].value < 0.5  # "A", "Dog", "runs." match nothing in "a dog runs"
    bank = {"bank": {"path": "bank.txt", "builtin": None}}
    assert [build_config("paper", bank, task=t).eval_tokenize for t in
            ("image_captioning", "video_captioning", "audio_captioning")] == ["ptb", "raw", "raw"]
