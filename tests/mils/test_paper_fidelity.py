"""The `paper` profile does what the official MILS code (facebookresearch/MILS at 2843135) does;
each of our deliberate differences is an option (docs/paper_differences.md)."""

import random
from pathlib import Path

import numpy as np
import pytest

from evaluation.datasets import Dataset, EvalSample
from mils.config.run_config import build_config
from mils.config.task_specs import get_task
from mils.config.tasks import BUILTIN
from mils.engine.loop import LoopOptions, Optimiser
from mils.engine.parsing import parse_candidates, parse_official
from mils.errors import MissingInputError
from mils.media import load_audio, spread_windows
from tests.conftest import NO_RELEASE, RELEASE

RELEASE_PROMPTS = RELEASE / "prompts"
OFFICIAL = sorted(task for task in BUILTIN if get_task(task).official)  # every built-in task has the official prompt


def template_for(task: str, prompts: str = "suite"):
    return get_task(task).template_for(prompts)
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


@pytest.mark.parametrize("task", OFFICIAL)
def test_the_paper_prompts_hash_as_the_official_files(task):
    """Runs everywhere: the SHA-256 of each file of facebookresearch/MILS@2843135 prompts/ (checked
    against the repository and the release copy) is shipped with the tests."""
    import hashlib
    import json

    shipped = json.loads((Path(__file__).parent / "data" / "official_prompt_sha256.json").read_text())
    assert hashlib.sha256(get_task(task).official.encode()).hexdigest() == shipped[task]
    assert hashlib.sha256(template_for(task, "official").text.encode()).hexdigest() == shipped[task]


@pytest.mark.skipif(not RELEASE_PROMPTS.is_dir(), reason=f"{NO_RELEASE}; their hashes are checked by "
                    "test_the_paper_prompts_hash_as_the_official_files")
@pytest.mark.parametrize("task", OFFICIAL)
def test_the_paper_prompts_are_the_official_files_byte_for_byte(task):
    official = (RELEASE_PROMPTS / get_task(task).official_file).read_bytes()
    assert get_task(task).official.encode() == official
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
    with pytest.raises(MissingInputError, match="image_captioning_shorter.txt"):  # at config time, before any model loads
        build_config("offline", {"prompts": str(tmp_path)})


@pytest.mark.parametrize("ties, best", [("kept_first", "red cat sofa"), ("new_first", "Sofa, red cat")])
def test_a_tie_goes_to_the_kept_candidate_or_as_in_the_official_code_to_the_new_one(ties, best, fake_scorer,
                                                                                    text_samples):
    # the bag-of-words scorer cannot tell the two apart (case, order, punctuation): an exact tie
    options = LoopOptions(steps=1, keep=1, requested=1, dedup="exact", ties=ties)
    result = Optimiser(_Replies("1. Sofa, red cat!"), fake_scorer, template_for("image_captioning"), ["red cat sofa"],
                       fake_scorer.embed_texts(["red cat sofa"]), options).run(text_samples[:1])[0]
    assert result.history[1].best_score == result.history[0].best_score
    assert result.history[1].best == best


def test_paper_profile_defaults_are_the_official_settings():
    config = build_config("paper", {"bank": {"path": "bank.txt"}})
    assert config.generator.max_new_tokens == 3000
    assert (config.loop.seed, config.loop.parser, config.loop.dedup) == (2024, "official", "exact")
    assert config.loop.ties == "new_first"
    assert config.prompts == "official" and (config.dataset.seed, config.dataset.sampler) == (2024, "official")
    t2i = build_config("paper", task="text_to_image")
    assert t2i.loop.max_words is None
    assert t2i.scorer.options == {"pipeline": "black-forest-labs/FLUX.1-schnell", "dtype": "bfloat16", "size": 256,
                                  "max_sequence_length": 256, "seed": 2024, "guidance": 7.0, "scaled": False}


def test_new_options_at_their_defaults_keep_older_result_keys():
    offline = build_config("offline")
    explicit = build_config("offline", {"loop": {"parser": "robust", "dedup": "normalised", "exploration_style": "suite",
                                                 "ties": "kept_first"},
                                        "prompts": "suite", "dataset": {"sampler": "numpy"},
                                        "bank": {"dedup": "normalised", "subsample_sampler": "numpy"}})
    assert explicit.result_key() == offline.result_key()
    for change in ({"loop": {"parser": "official"}}, {"loop": {"dedup": "exact"}}, {"prompts": "official"},
                   {"dataset": {"sampler": "official"}}, {"loop": {"exploration_style": "official"}},
                   {"bank": {"dedup": "exact"}}, {"bank": {"subsample_sampler": "official"}},
                   {"loop": {"ties": "new_first"}}):
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


def test_audio_windows_are_imagebinds_three_clips_spread_over_the_file():
    wave = np.arange(10 * 16000)  # 10 s at 16 kHz: clips start at 0, 8/3 and 16/3 s (pytorchvideo's formula)
    clips = spread_windows(wave, 16000, clips=3, seconds=2.0)
    assert [(int(c[0]), len(c)) for c in clips] == [(0, 32000), (42666, 32000), (85333, 32000)]
    short = spread_windows(np.arange(16000), 16000, clips=3, seconds=2.0)  # shorter than a clip: the whole file, 3x
    assert [len(c) for c in short] == [16000] * 3


def test_clap_with_windows_averages_unit_clip_embeddings_and_scales_scores(tiny_clap_dir, tmp_path):
    import soundfile as sf
    import torch

    from mils.protocols import Sample
    from mils.scorers.audio import clap_scorer

    plain = clap_scorer(str(tiny_clap_dir), device="cpu")
    # the tiny model reads 1 s (the real one 10 s), so 0.5 s clips are read whole
    paper = clap_scorer(str(tiny_clap_dir), device="cpu", windows=3, window_seconds=0.5, scale=20.0)
    rate = paper.rate
    wave = np.random.default_rng(0).standard_normal(5 * rate).astype(np.float32) * np.linspace(0, 1, 5 * rate)
    sf.write(str(tmp_path / "rising.wav"), wave, rate)  # 5 s of louder and louder noise
    sample = Sample("a", tmp_path / "rising.wav")
    emb = paper.embed_samples([sample])

    stored = load_audio(sample.media, rate)  # as written to the file (16-bit)
    inputs = paper.processor(audio=spread_windows(stored, rate, 3, 0.5), sampling_rate=rate, return_tensors="pt")
    with torch.inference_mode():
        clips = paper.model.get_audio_features(input_features=inputs["input_features"], is_longer=inputs["is_longer"])
    clips = torch.nn.functional.normalize(getattr(clips, "pooler_output", clips), dim=-1).numpy()
    np.testing.assert_allclose(emb[0], clips.mean(axis=0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(emb, plain.embed_samples([sample]), atol=1e-3)  # the first seconds otherwise
    text = paper.embed_texts(["a rising hiss"])
    np.testing.assert_allclose(paper.similarity(emb, text), 20.0 * (emb @ text.T), rtol=1e-6)
    assert paper.fingerprint() != plain.fingerprint()  # no bank-cache mix-up
    audio = build_config("paper", {"bank": {"path": "audio_bank.txt"}}, task="audio_captioning")
    assert (audio.scorer.options["windows"], audio.scorer.options["window_seconds"], audio.scorer.options["scale"]) \
        == (3, 2.0, 20.0)
    # eval_utils/audio_captioning.py:75-77 reports SPIDEr = (CIDEr + SPICE) / 2 beside the COCO metrics
    assert audio.metrics == ("BLEU", "METEOR", "ROUGE_L", "CIDEr", "SPICE", "SPIDEr")
    assert "SPIDEr" not in build_config("paper", {"bank": {"path": "b.txt"}}).metrics


def test_imagebind_scaled_keeps_the_models_own_scores():
    import torch

    from mils.scorers.audio import ImageBindAudioScorer

    class Model(torch.nn.Module):  # ImageBind's output: the mean of three clips' 20 x unit vectors
        def forward(self, inputs):
            return {key: torch.tensor([[12.0, 9.0]]) for key in inputs}

    class Data:
        @staticmethod
        def load_and_transform_text(texts, device):
            return texts

    modality = type("Modality", (), {"TEXT": "text", "AUDIO": "audio"})
    scaled = ImageBindAudioScorer(Model(), Data, modality, "cpu", scaled=True)
    plain = ImageBindAudioScorer(Model(), Data, modality, "cpu", scaled=False)
    np.testing.assert_allclose(scaled.embed_texts(["x"]), [[12.0, 9.0]])
    np.testing.assert_allclose(plain.embed_texts(["x"]), [[0.8, 0.6]])
    assert scaled.fingerprint() != plain.fingerprint()


class _Recording(_Replies):
    def generate(self, prompts, seeds):
        self.prompts = list(prompts)
        return super().generate(prompts, seeds)


def test_official_exploration_keeps_the_pure_top_k_and_only_shows_the_explored(fake_scorer, fake_bank, text_samples):
    def run(steps, **options):
        generator = _Recording("1. red cat sofa\n2. a boat\n")
        result = Optimiser(generator, fake_scorer, template_for("image_captioning"), fake_bank,
                           fake_scorer.embed_texts(fake_bank), LoopOptions(steps=steps, keep=6, requested=2, **options)
                           ).run(text_samples[:1])[0]
        return result, generator

    greedy, _ = run(0)
    official, generator = run(1, exploration=0.5, exploration_style="official")
    suite, _ = run(0, exploration=0.5)
    top = [t for t, _ in greedy.kept]
    assert [t for t, _ in official.trace[0].kept] == top  # step 0 keeps the pure top-K ...
    shown = [line.split(": ", 1)[1] for line in generator.prompts[0].splitlines() if line[:1].isdigit() and ": " in line]
    assert shown[:3] == top[:3] and set(shown[3:]) - set(top)  # ... and the prompt shows 3 explored from below
    pool = sorted(official.trace[0].kept + official.trace[1].new, key=lambda tv: -tv[1])
    assert [t for t, _ in official.kept] == [t for t, _ in pool[:6]]  # the explored did not survive the step
    assert [t for t, _ in suite.kept][:3] == top[:3] and [t for t, _ in suite.kept][3:] != top[3:]


def test_the_official_bank_subset_is_random_sample_over_the_files_lines(tmp_path):
    from mils.components.build import build_bank
    from mils.components.plan import plan_run

    lines = [f"caption {i}" for i in range(40)] + ["A dog.", "a dog", "A dog."]
    (tmp_path / "bank.txt").write_text("\n".join(lines))

    def bank(**options):
        config = build_config("offline", {"bank": {"path": str(tmp_path / "bank.txt"), **options}})
        return build_bank(plan_run(config).bank).texts

    random.seed(0)
    drawn = random.sample(lines, 30)
    expected = list(dict.fromkeys(drawn))  # exact duplicates dropped, order drawn
    assert list(bank(subsample=30, subsample_sampler="official", dedup="exact")) == expected
    assert list(bank(subsample=30)) != expected
    assert len(bank(dedup="exact")) == 42 and len(bank()) == 41  # "A dog." and "a dog" are one caption by default
    paper = build_config("paper", {"bank": {"path": "bank.txt"}})
    assert (paper.bank.dedup, paper.bank.subsample_sampler, paper.loop.exploration_style) == ("exact", "official",
                                                                                             "official")


@pytest.mark.parametrize("parser, cut_line_kept", [("official", True), ("robust", False)])
def test_a_reply_cut_by_the_token_limit_keeps_its_counted_last_line_under_the_official_parser(parser, cut_line_kept,
                                                                                            fake_scorer, text_samples):
    from mils.protocols import Reply

    class Cut:
        def generate(self, prompts, seeds):
            return [Reply("1. red cat sofa\n2. red cat on a blue so", cut=True) for _ in prompts]

    result = Optimiser(Cut(), fake_scorer, template_for("image_captioning"), ["old house"],
                       fake_scorer.embed_texts(["old house"]), LoopOptions(steps=1, keep=3, requested=2, parser=parser)
                       ).run(text_samples[:1])[0]
    assert result.history[1].new_unique == (2 if cut_line_kept else 1)
    assert result.raw_replies == ["1. red cat sofa\n2. red cat on a blue so"]  # stored as written


def test_the_official_stop_tokens_replace_the_generation_configs_list():
    from mils.generators.transformers_llm import stop_ids

    class Tokenizer:  # Llama-3.1-Instruct's: eos <|eot_id|> (128009); its generation config: 128001, 128008, 128009
        eos_token_id = 128009

        def get_vocab(self):
            return {"<|eot_id|>": 128009, "<|end_of_text|>": 128001, "<|eom_id|>": 128008}

    assert stop_ids([128001, 128008, 128009], Tokenizer(), "model") == [128001, 128008, 128009]
    assert stop_ids([128001, 128008, 128009], Tokenizer(), "official") == [128009]


def test_top_k_samples_among_the_k_most_likely_tokens_before_top_p():
    import torch

    from mils.generators.sampler import TokenSampler, counter_uniforms, split_seeds

    logits = torch.tensor([[4.0, 3.9, 3.8, 3.7, 3.6, 3.5]])
    picked = {}
    for top_k in (None, 2):
        sampler = TokenSampler(temperature=1.0, top_k=top_k, top_p=0.99)
        picked[top_k] = {int(sampler(logits, counter_uniforms(split_seeds([s], "cpu"), torch.tensor([0]))))
                         for s in range(200)}
    assert picked[2] == {0, 1} and len(picked[None]) == 6


def test_the_paper_profile_samples_as_the_official_generate_call():
    config = build_config("paper", {"bank": {"path": "bank.txt"}})
    g = config.generator
    assert (g.temperature, g.top_p, g.top_k, g.max_new_tokens, g.stop_tokens) == (0.5, 0.9, 50, 3000, "official")
    assert g.rng == "counter"  # per-row draws on the device (the official generate drew from one global stream)
    assert build_config("offline").generator.top_k is None


@pytest.mark.parametrize("row, task, kind, scorer", [
    ("image_captioning_coco", "image_captioning", "coco_karpathy", "open_clip"),
    ("image_captioning_coco_1k", "image_captioning", "coco_karpathy", "open_clip"),
    ("video_captioning_msrvtt", "video_captioning", "msrvtt", "video_frames"),
    ("audio_captioning_clotho", "audio_captioning", "clotho", "clap"),
    ("text_to_image_drawbench", "text_to_image", "drawbench", "pickscore_t2i"),
    ("style_transfer", "style_transfer", "sample", "style_transfer"),
])
def test_one_config_per_paper_row_brings_its_task_dataset_and_settings(row, task, kind, scorer):
    from evaluation.datasets import check_dataset
    from mils.config.profiles import task_defaults
    from mils.config.run_config import load_config

    config = load_config(Path(__file__).parents[2] / "configs" / "paper" / f"{row}.yaml")
    check_dataset(config.dataset)
    assert (config.task, config.dataset.kind, config.scorer.name) == (task, kind, scorer)
    loop = task_defaults("paper", task).get("loop", {"steps": 10, "keep": 50, "requested": 50})
    assert {k: getattr(config.loop, k) for k in loop} == loop  # a YAML's `task:` brings the task's paper settings
    assert config.loop.parser == "official" and config.generator.top_k == 50
    if kind == "coco_karpathy":
        assert (config.dataset.sampler, config.dataset.seed) == ("official", 2024)
        assert config.dataset.limit == (1000 if row.endswith("1k") else None)
    if task == "audio_captioning":
        assert "SPIDEr" in config.metrics and config.eval_tokenize == "raw"
