"""Bad input never stops a run or loses results: it becomes that sample's failure, with its reason."""

import json
import math
from pathlib import Path

import numpy as np

from mils.components.plan import plan_run
from mils.config.run_config import build_config
from mils.engine.loop import Optimiser
from mils.media import MediaError, media_problem
from mils.protocols import Sample
from mils.run.runner import TaskRunner, check_media
from mils.storage.results import ResultStore, result_from_dict
from tests.mils.engine.test_loop import make_optimiser


def test_a_truncated_jpeg_and_a_zero_frame_wav_are_found_up_front(photo_dir, tmp_path):
    import soundfile as sf

    good = photo_dir / "chelsea.jpg"
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good.read_bytes()[:3000])  # a valid header, most pixels gone
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros((0, 1), dtype=np.float32), 16000)
    assert media_problem(good) is None
    assert "unreadable image" in media_problem(trunc) and str(trunc) in media_problem(trunc)
    assert media_problem(silent) == f"audio {silent} has no frames"
    assert media_problem(tmp_path) == f"{tmp_path} is a folder, not a media file"
    readable, failed = check_media([Sample.from_path(p) for p in (trunc, good, silent)])
    assert [s.id for s in readable] == [str(good)] and set(failed) == {str(trunc), str(silent)}


class _DecodesLate:
    """A scorer that fails to decode one sample only when the loop embeds it."""

    higher_is_better = True

    def __init__(self, scorer, bad: str):
        self.scorer, self.bad = scorer, bad

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def embed_samples(self, samples):
        if any(s.id == self.bad for s in samples):
            raise MediaError(f"cannot read image {self.bad}: broken data stream")
        return self.scorer.embed_samples(samples)


def test_a_sample_that_fails_to_decode_inside_the_loop_fails_alone(fake_generator, fake_scorer, fake_bank, text_samples):
    config = build_config("offline", {"loop": {"steps": 1, "keep": 3, "requested": 3}, "batch_size": 8})
    scorer = _DecodesLate(fake_scorer, "s2")
    runner = TaskRunner.__new__(TaskRunner)
    plan = plan_run(config)
    runner.plan, runner.seeds, runner.seeds_alone = plan, None, False
    runner.optimiser = make_optimiser(fake_generator, scorer, fake_bank, steps=1, keep=3, requested=3)
    assert isinstance(runner.optimiser, Optimiser)
    results, failed = runner._run_halving(text_samples, None)
    assert sorted(r.sample_id for r in results) == ["s0", "s1", "s3", "s4"]
    assert failed == {"s2": "cannot read image s2: broken data stream"}


def test_results_record_absolute_media_paths(photo_dir, monkeypatch):
    from mils.engine.loop import _media_name

    monkeypatch.chdir(photo_dir.parent)
    assert _media_name(Path(photo_dir.name) / "chelsea.jpg") == str(photo_dir / "chelsea.jpg")  # typed relative
    assert _media_name("a prompt for text-to-image") == "a prompt for text-to-image" and _media_name(object()) is None


def test_a_nan_score_is_written_as_something_the_reader_reads(fake_generator, fake_scorer, fake_bank, text_samples,
                                                             tmp_path):
    import dataclasses

    result = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=1, keep=3, requested=3).run(text_samples[:1])[0]
    history = [dataclasses.replace(result.history[0], best_score=float("nan")), *result.history[1:]]
    store = ResultStore(tmp_path)
    store.write(dataclasses.replace(result, history=history))
    path = next((tmp_path / "samples").glob("*.json"))
    assert json.loads(path.read_text())["history"][0]["best_score"] is None  # JSON has no NaN
    back = store.results()[0]
    assert math.isnan(back.history[0].best_score) and back.history[1:] == result.history[1:]
    assert result_from_dict(json.loads(path.read_text())).sample_id == result.sample_id


def test_mils_caption_on_a_folder_says_so_in_one_line(tmp_path, capsys):
    from cli.main import main

    assert main(["caption", str(tmp_path)]) == 2
    assert "cannot tell the modality" in capsys.readouterr().err
