import json
from pathlib import Path

import numpy as np
import pytest

from mils.components.plan import plan_run
from mils.config.run_config import build_config
from mils.protocols import Sample
from mils.run.runner import TaskRunner, loop_overhead


@pytest.fixture
def bank_file(tmp_path, fake_bank) -> Path:
    path = tmp_path / "bank.txt"
    path.write_text("\n".join(fake_bank))
    return path


def fake_config(tmp_path, bank_file, **loop):
    return build_config("offline", {
        "bank": {"path": str(bank_file), "builtin": None},
        "loop": {"steps": 2, "keep": 4, "requested": 5, **loop},
        "batch_size": 2,
        "cache_dir": str(tmp_path / "cache"),
    })


def test_bank_is_encoded_once_across_many_samples_and_runs(tmp_path, bank_file, fake_bank, fake_generator,
                                                          fake_scorer, text_samples):
    config = fake_config(tmp_path, bank_file)
    runner = TaskRunner(plan_run(config), generator=fake_generator, scorer=fake_scorer)
    bank_calls = [t for t in fake_scorer.texts_embedded if t in set(fake_bank)]
    assert len(bank_calls) == len(fake_bank)
    run = runner.run(text_samples, progress=False)
    runner.run(text_samples[:2], progress=False)
    assert len([t for t in fake_scorer.texts_embedded if t in set(fake_bank)]) == len(fake_bank)
    assert len(run.results) == len(text_samples) and fake_generator.batches[:2] == [2, 2]
    # a second runner (a new process) reads the bank embeddings from the disk cache
    fresh = type(fake_scorer)()
    TaskRunner(plan_run(config), generator=fake_generator, scorer=fresh)
    assert fresh.texts_embedded == []
    assert 0.0 <= loop_overhead(run.timings) <= 1.0


def test_loop_overhead_is_the_share_of_loop_time_outside_the_models():
    timings = {"loop_total": 10.0, "generation": 6.0, "sample_embedding": 1.0, "candidate_scoring": 0.5, "other": 2.5}
    assert loop_overhead(timings) == pytest.approx(0.25)
    assert np.isnan(loop_overhead({}))


def test_unreadable_images_are_reported_and_the_rest_still_run(tmp_path, bank_file, fake_generator, fake_scorer):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\x00garbage")
    samples = [Sample("ok", "red cat"), Sample.from_path(broken), Sample.from_path(tmp_path / "gone.png")]
    run = TaskRunner(plan_run(fake_config(tmp_path, bank_file)), generator=fake_generator, scorer=fake_scorer).run(
        samples, progress=False)
    assert [r.sample_id for r in run.results] == ["ok"]
    assert set(run.failed) == {str(broken), str(tmp_path / "gone.png")}
    assert "broken.jpg" in run.failed[str(broken)] and "missing file" in run.failed[str(tmp_path / "gone.png")]


@pytest.mark.slow
def test_real_smollm2_with_tiny_open_clip(tmp_path, bank_file, smollm2, tiny_clip_name, photo_dir):
    config = build_config("offline", {
        "scorer": {"name": "open_clip", "options": {"model": tiny_clip_name, "pretrained": None, "device": "cpu"}},
        "bank": {"path": str(bank_file), "builtin": None},
        "loop": {"steps": 3, "keep": 5, "requested": 5},
        "cache_dir": str(tmp_path / "cache"),
    })
    photos = sorted(photo_dir.glob("*.jpg"))
    run = TaskRunner(plan_run(config), generator=smollm2).run([Sample.from_path(p) for p in photos], progress=False)
    assert len(run.results) == len(photos) and not run.failed
    for result in run.results:
        assert [h.step for h in result.history] == [0, 1, 2, 3]
        assert result.history[0].best in bank_file.read_text().splitlines()
        assert result.history[3].best_score >= result.history[0].best_score
        assert len(result.raw_replies) == 3
    # the real LLM produced parseable candidates for at least one sample
    assert sum(h.new_unique for r in run.results for h in r.history[1:]) > 0


@pytest.mark.slow
def test_cli_caption_json_offline_profile(tmp_path, photo_dir, capsys):
    from cli.main import main

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    cat = photo_dir / "chelsea.jpg"
    out = tmp_path / "out"
    code = main(["caption", str(cat), str(broken), "--json", "--steps", "1", "--keep", "3", "--requested", "3",
                 "--out", str(out)])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert code == 1  # one input failed
    assert lines[1] == {"input": str(broken), "error": lines[1]["error"]} and "broken.png" in lines[1]["error"]
    result = lines[0]
    assert result["input"] == str(cat) and result["caption"] == result["history"][-1]["best"]
    assert [h["step"] for h in result["history"]] == [0, 1]
    assert set(result["history"][0]) >= {"step", "best", "best_score", "mean_topk"}
    assert "cat" in result["history"][0]["best"]  # the concept scorer knows ImageNet cats

    # the same results folder `mils run` writes: the viewer, compare and the judging export read it
    from evaluation.compare import system_from_path
    from human_eval.viewer import RunIndex
    from mils.storage.results import ResultStore

    store = ResultStore(out)
    assert [r.caption for r in store.results()] == [result["caption"]]
    assert list(store.failures()) == [str(broken)]
    index = RunIndex(out)
    assert index.page()["total"] == 2 and not index.problems and index.config["scorer"]["name"] == "concept"
    assert system_from_path(str(out)).predictions == {str(cat): result["caption"]}
    from evaluation.run_record import read_record  # its record, read back typed (issue 50, item 3)

    record = read_record(out)
    assert (record.kind, record.failures, record.counts["done"]) == ("caption", {str(broken): lines[1]["error"]}, 1)
    assert record.samples[0].caption == result["caption"] and record.score_gain.wins + record.score_gain.ties == 1


def test_a_reporter_sees_every_step(tmp_path, bank_file, fake_generator, fake_scorer, text_samples):
    class Reporter:
        def __init__(self):
            self.steps, self.updates = [], 0

        def update(self, n):
            self.updates += n

        def set_postfix(self, step, best):
            self.steps.append(step)

    reporter = Reporter()
    config = fake_config(tmp_path, bank_file)
    TaskRunner(plan_run(config), generator=fake_generator, scorer=fake_scorer).run(text_samples, reporter=reporter)
    assert reporter.steps == [1, 2, 1, 2, 1, 2]  # 3 batches of 2 x 2 steps
    assert reporter.updates == len(text_samples) * 2


def test_seed_captions_are_scored_beside_the_bank_and_refined(tmp_path, bank_file, fake_generator, fake_scorer,
                                                              text_samples):
    """MILS as a caption enhancer: another captioner's output joins each sample's step 0."""
    seeds = tmp_path / "vlm.json"  # s0's target is "red cat on sofa": its seed beats every two-word bank line
    seeds.write_text(json.dumps({"s0": "red cat on sofa", "s1": ["boat", "blue boat river"]}))
    plain = fake_config(tmp_path, bank_file)
    config = plain.model_copy(update={"bank": plain.bank.model_copy(update={"seed_captions": str(seeds)})})
    assert config.result_key() != plain.result_key()
    run = TaskRunner(plan_run(config), generator=fake_generator, scorer=fake_scorer).run(text_samples, progress=False)
    by_id = {r.sample_id: r for r in run.results}
    assert by_id["s0"].initial.best == "red cat on sofa" and by_id["s1"].initial.best == "blue boat river"
    assert by_id["s0"].cost[0].candidates_scored == len(run.bank) + 1
    assert by_id["s2"].initial.best in run.bank.texts  # no seed for s2: the bank alone
    key = config.result_key()
    seeds.write_text(json.dumps({"s0": "a red cat"}))
    assert config.result_key() != key  # the key follows the file's content


def test_seed_captions_alone_and_samples_without_one_fail_clearly(tmp_path, fake_generator, fake_scorer,
                                                                  text_samples):
    seeds = tmp_path / "vlm.json"
    seeds.write_text(json.dumps({"s0": "a cat", "s1": "a boat"}))
    config = build_config("offline", {"bank": {"builtin": "none", "seed_captions": str(seeds)},
                                      "loop": {"steps": 2, "keep": 4, "requested": 5}, "batch_size": 2,
                                      "cache_dir": str(tmp_path / "cache")})
    run = TaskRunner(plan_run(config), generator=fake_generator, scorer=fake_scorer).run(text_samples, progress=False)
    assert {r.sample_id: r.initial.best for r in run.results} == {"s0": "a cat", "s1": "a boat"}
    assert all(r.history[-1].best_score >= r.initial.best_score for r in run.results)
    assert set(run.failed) == {"s2", "s3", "s4"} and "no caption for s2 in" in run.failed["s2"]
    seeds.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must map sample id"):
        TaskRunner(plan_run(config), generator=fake_generator, scorer=fake_scorer)


def test_out_of_memory_batches_are_halved_and_what_succeeds_equals_a_fault_free_run(
        tmp_path, bank_file, fake_generator, fake_scorer, text_samples):
    import torch

    from tests.fakes import FakeGenerator, FakeScorer

    config = fake_config(tmp_path, bank_file).model_copy(update={"batch_size": 5})
    clean = TaskRunner(plan_run(config), generator=FakeGenerator(), scorer=FakeScorer()).run(text_samples, progress=False)

    class SmallGPU(FakeGenerator):  # more than two prompts at once do not fit
        calls: list[int] = []

        def generate(self, prompts, seeds):
            self.calls.append(len(prompts))
            if len(prompts) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().generate(prompts, seeds)

    class HugeSample(FakeScorer):  # s3 does not fit even alone
        def embed_samples(self, samples):
            if any(s.id == "s3" for s in samples):
                raise RuntimeError("CUDA error: out of memory")
            return super().embed_samples(samples)

    generator = SmallGPU()
    run = TaskRunner(plan_run(config), generator=generator, scorer=FakeScorer()).run(text_samples, progress=False)
    # 5 fails -> 2 (two steps) + 3 fails -> 1 (two steps) + 2 (two steps)
    assert generator.calls == [5, 2, 2, 3, 1, 1, 2, 2]
    def outcome(results):  # everything but the timings in the cost ledger
        return [(r.sample_id, r.history, r.kept, r.raw_replies, r.trace) for r in results]

    assert run.failed == {} and outcome(run.results) == outcome(clean.results)  # identical, sample for sample
    run = TaskRunner(plan_run(config), generator=FakeGenerator(), scorer=HugeSample()).run(text_samples, progress=False)
    assert list(run.failed) == ["s3"] and "out of memory even alone" in run.failed["s3"]
    assert outcome(run.results) == outcome([r for r in clean.results if r.sample_id != "s3"])

    class Broken(FakeGenerator):  # any other error is not retried
        def generate(self, prompts, seeds):
            raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        TaskRunner(plan_run(config), generator=Broken(), scorer=FakeScorer()).run(text_samples, progress=False)
