"""Every MILS task end to end on tiny real-class models (fake LLM unless the test is about the LLM)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mils.components.plan import plan_run
from mils.config.run_config import build_config
from mils.config.task_specs import get_task
from mils.protocols import Sample
from mils.run.runner import TaskRunner
from mils.storage.results import ResultStore
from mils.storage.run_folder import RunFolder
from tests.conftest import write_audio, write_video


@pytest.fixture
def bank_file(tmp_path, fake_bank):
    path = tmp_path / "bank.txt"
    path.write_text("\n".join(fake_bank))
    return path


def _config(task, scorer, tmp_path, bank=None, **loop):
    overrides = {"scorer": scorer, "loop": {"steps": 2, "keep": 3, "requested": 4, **loop},
                 "cache_dir": str(tmp_path / "cache")}
    if bank:
        overrides["bank"] = {"path": str(bank), "builtin": None}
    return build_config("offline", overrides, task=task)


def test_video_captioning(tmp_path, bank_file, tiny_clip_name, fake_generator):
    torch.manual_seed(0)
    scorer = {"name": "video_frames", "options": {"frames": 4, "image_scorer": {
        "name": "open_clip", "options": {"model": tiny_clip_name, "pretrained": None, "device": "cpu"}}}}
    config = _config("video_captioning", scorer, tmp_path, bank_file)
    videos = [write_video(tmp_path / f"v{i}.mp4", n_frames=20 + 10 * i) for i in range(2)]
    runner = TaskRunner(plan_run(config), generator=fake_generator)
    run = runner.run([Sample.from_path(v) for v in videos], progress=False)
    assert len(run.results) == 2 and not run.failed
    assert all([h.step for h in r.history] == [0, 1, 2] for r in run.results)
    # step 0 is the bank text the frame-averaging scorer ranks first for that video
    scorer, texts = runner.scorer, list(run.bank.texts)
    for video, result in zip(videos, run.results):
        sims = scorer.similarity(scorer.embed_samples([Sample.from_path(video)]), scorer.embed_texts(texts))[0]
        assert result.history[0].best == texts[int(np.argmax(sims))]
        assert result.history[0].best_score == pytest.approx(float(np.max(sims)), abs=1e-5)
        assert [h.best_score for h in result.history] == sorted(h.best_score for h in result.history)
    assert "short video descriptions" in TaskRunner(plan_run(config), generator=fake_generator).optimiser.template.text


def test_audio_captioning(tmp_path, bank_file, tiny_clap_dir, fake_generator):
    config = _config("audio_captioning", {"name": "clap", "options": {"model": str(tiny_clap_dir), "device": "cpu"}},
                     tmp_path, bank_file)
    clips = [write_audio(tmp_path / "a.wav", 1.0, 44100), write_audio(tmp_path / "b.flac", 0.7, 16000, 1)]
    (tmp_path / "bad.wav").write_bytes(b"junk")
    samples = [Sample.from_path(c) for c in clips] + [Sample("bad", tmp_path / "bad.wav")]
    run = TaskRunner(plan_run(config), generator=fake_generator).run(samples, progress=False)
    assert len(run.results) == 2 and list(run.failed) == ["bad"] and "bad.wav" in run.failed["bad"]
    assert config.loop.keep == 3 and "short audio descriptions" in get_task("audio_captioning").template.text


def test_text_to_image(tmp_path, tiny_sd_dir, tiny_pickscore_dir, fake_generator):
    from mils.run.image_tasks import run_text_to_image

    scorer = {"name": "pickscore_t2i", "options": {"pipeline": str(tiny_sd_dir), "reward": str(tiny_pickscore_dir),
                                                   "steps": 2, "guidance": None, "size": 32, "device": "cpu"}}
    config = _config("text_to_image", scorer, tmp_path)
    assert config.bank.builtin == "none"
    results = run_text_to_image(config, ["a red cat on a sofa", "two boats on a river"], tmp_path / "out",
                                generator=fake_generator)
    folder = RunFolder(results[0]["results_dir"])  # a normal results folder under out/, named by config and prompts
    assert folder.root.parent == tmp_path / "out" and json.loads(folder.config.read_text())["task"] == "text_to_image"
    for n, result in enumerate(results):
        assert result["sample_id"] == f"prompt{n:03d}"
        assert result["history"][0]["best"] == result["prompt"]  # step 0: the original prompt
        assert [p.split("/")[-1] for p in result["images"]] == ["step00.png", "step01.png", "step02.png"]
        assert all(Path(p).is_file() and Path(p).parent == folder.step_images(result["sample_id"]) for p in result["images"])
        assert ResultStore(folder.root).results([result["sample_id"]])[0].caption == result["best_prompt"]
        scores = [h["best_score"] for h in result["history"]]
        assert scores == sorted(scores)
        # the ledger counts renders: step 0 renders the prompt, each step its new candidates
        assert [c["renders"] for c in result["cost"]] == pytest.approx(
            [1] + [h["new_unique"] for h in result["history"][1:]])


def test_style_transfer(tmp_path, tiny_pix2pix_dir, photo_dir, fake_generator):
    from mils.run.image_tasks import run_style_transfer

    bank = tmp_path / "pix2pix.txt"
    bank.write_text("make it a watercolour painting\nturn it into a mosaic\nadd snow\nmake it look like a sketch\n")
    scorer = {"name": "style_transfer", "options": {"editor": str(tiny_pix2pix_dir), "steps": 2, "vgg_size": 64,
                                                    "size": 64, "device": "cpu"}}
    config = _config("style_transfer", scorer, tmp_path, bank, keep=2)
    result = run_style_transfer(config, photo_dir / "chelsea.jpg", photo_dir / "coffee.jpg", tmp_path / "style",
                                generator=fake_generator)
    assert result["history"][0]["best"] in bank.read_text().splitlines()
    totals = [h["best_score"] for h in result["history"]]
    assert totals == sorted(totals, reverse=True)  # both distances are minimised
    assert all(len(value) == 2 for _, value in result["kept"])  # (style, content) pairs
    folder = RunFolder(result["results_dir"])
    assert (folder.step_images("chelsea+coffee") / "step02.png").is_file() and ResultStore(folder.root).has("chelsea+coffee")
    unique = 4 + sum(h["new_unique"] for h in result["history"][1:])
    assert result["edits_rendered"] == unique  # kept instructions were never edited again
    assert sum(c["renders"] for c in result["cost"]) == pytest.approx(unique)  # the ledger counts each edit


def test_cross_modal_arithmetic(tmp_path, bank_file, tiny_clip_name, tiny_clap_dir, tiny_sd_dir, tiny_pickscore_dir,
                                fake_generator, photo_dir):
    from mils.run.arithmetic import run_arithmetic

    torch.manual_seed(0)
    image_cfg = _config("image_captioning", {"name": "open_clip", "options": {
        "model": tiny_clip_name, "pretrained": None, "device": "cpu"}}, tmp_path, bank_file)
    audio_cfg = _config("audio_captioning", {"name": "clap", "options": {"model": str(tiny_clap_dir),
                                                                         "device": "cpu"}}, tmp_path, bank_file)
    t2i_cfg = _config("text_to_image", {"name": "pickscore_t2i", "options": {
        "pipeline": str(tiny_sd_dir), "reward": str(tiny_pickscore_dir), "steps": 2, "guidance": None, "size": 32,
        "device": "cpu"}}, tmp_path, steps=1)
    audio = write_audio(tmp_path / "bark.wav", 1.0, 16000)
    summary = run_arithmetic(image_cfg, audio_cfg, t2i_cfg, photo_dir / "chelsea.jpg", audio, tmp_path / "arith",
                             generator=fake_generator)
    out = tmp_path / "arith"
    for name in ("image_caption.txt", "audio_caption.txt", "combined_prompt.txt", "arithmetic.json"):
        assert (out / name).is_file(), name
    assert summary["combined_prompt"] == (out / "combined_prompt.txt").read_text().strip()
    (folder,) = (out / "text_to_image").iterdir()  # the image stage's results folder
    assert (RunFolder(folder).step_images("prompt000") / "step01.png").is_file()
    # each stage starts from the one before: the image stage rewrote the combined prompt, whose
    # inputs are the two captioning runs' results
    (t2i,) = ResultStore(folder).results()
    assert t2i.history[0].best == summary["combined_prompt"] and t2i.caption == summary["final_prompt"]
    torch.manual_seed(0)  # the same random tiny CLIP as the arithmetic run built first
    alone = TaskRunner(plan_run(image_cfg), generator=fake_generator).run([Sample.from_path(photo_dir / "chelsea.jpg")],
                                                                 progress=False)
    assert summary["image_caption"] == alone.results[0].caption
    assert json.loads((out / "arithmetic.json").read_text())["final_image"].endswith("step01.png")


def test_combine_retries_and_then_names_the_reply():
    from mils.run.arithmetic import combine

    class Muted:
        calls = 0

        def generate(self, prompts, seeds):
            Muted.calls += 1
            return ["Sure, here it is:"]

    with pytest.raises(ValueError, match="no usable combined prompt in 3 tries"):
        combine(Muted(), "a cat", "a dog barking", seed=0)
    assert Muted.calls == 3


def test_a_custom_video_scorer_plugs_in_by_name(tmp_path, fake_generator):
    """How a user adds e.g. ViCLIP: register a scorer in their module, name it and the module."""
    bank = tmp_path / "bank.txt"
    bank.write_text("a bright scene\na dark scene\na cat\n")
    config = build_config("offline", {"plugins": ["tests.fakes"], "scorer": {"name": "test_video_brightness"},
                                      "bank": {"path": str(bank), "builtin": None},
                                      "loop": {"steps": 1, "keep": 1, "requested": 3},
                                      "cache_dir": str(tmp_path / "cache")}, task="video_captioning")
    videos = [write_video(tmp_path / "dark.mp4", 12, step=1), write_video(tmp_path / "bright.mp4", 12, step=20)]
    run = TaskRunner(plan_run(config), generator=fake_generator).run([Sample.from_path(v) for v in videos], progress=False)
    assert [r.history[0].best for r in run.results] == ["a dark scene", "a bright scene"]


def test_an_image_task_with_a_scorer_that_makes_no_images_is_one_line(tmp_path, fake_generator, fake_scorer):
    """The image tasks write out the image each step's best text became (ImageMaker.image_of): a
    two-tower scorer has none to write, said before any step runs."""
    from mils.errors import InputError
    from mils.run.image_tasks import run_text_to_image

    config = build_config("offline", task="text_to_image")
    with pytest.raises(InputError, match="makes no images"):
        run_text_to_image(config, ["a red cat"], tmp_path / "out", generator=fake_generator, scorer=fake_scorer)
    assert not (tmp_path / "out").exists()


def test_an_image_task_given_another_task_s_config_says_so_before_loading_anything(tmp_path, fake_generator):
    from mils.errors import InputError
    from mils.run.image_tasks import run_style_transfer

    with pytest.raises(InputError, match="this runs style_transfer, but the config is for 'text_to_image'"):
        run_style_transfer(build_config("offline", task="text_to_image"), "a.jpg", "b.jpg", tmp_path / "out",
                           generator=fake_generator)
    assert not (tmp_path / "out").exists()


def test_a_combine_prompt_file_with_the_papers_slots_is_what_the_llm_is_asked(tmp_path):
    """Issue 49, item 1: the paper's Appendix B prompt uses {image_caption} and {audio_caption}; a
    file with those slots replaces this suite's prompt, and one without them is refused up front."""
    import pytest

    from mils.errors import InputError
    from mils.protocols import Reply
    from mils.run.arithmetic import combine, combine_template

    asked = []

    class Recorder:
        def generate(self, prompts, seeds):
            asked.extend(prompts)
            return [Reply("1. a dog barking in a quiet kitchen")]

    file = tmp_path / "combine.txt"
    file.write_text("Image: {image_caption}\nAudio: {audio_caption}\nOne sentence {not a slot}:\n")
    assert combine(Recorder(), "a kitchen", "a dog barks", 0, combine_template(file)) == "a dog barking in a quiet kitchen"
    assert asked == ["Image: a kitchen\nAudio: a dog barks\nOne sentence {not a slot}:\n"]
    (tmp_path / "bad.txt").write_text("Image: {image_description}\n")
    with pytest.raises(InputError, match=r"no \{image_caption\} or \{audio_caption\} slot"):
        combine_template(tmp_path / "bad.txt")
    assert "{image_description}" in combine_template(None)  # this suite's own, the default
