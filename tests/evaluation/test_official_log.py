"""`mils export official`: our results in the official `<id>/log.txt` layout, read back the way the
official evaluation scripts read it (`eval_utils/image_captioning.py`: the last tab field of a line;
`eval_utils/find_average_scores.py`: column 1, negated)."""

import math

import numpy as np
import pytest

from cli.main import main
from evaluation.official_log import export_official, read_official_logs
from mils.engine.records import SampleResult, StepRecord, StepTrace
from mils.errors import InputError
from mils.storage.results import ResultStore
from tests.mils.engine.test_loop import make_optimiser


def official_caption(log: str, index_to_choose: int = -1) -> str:
    return log.splitlines(keepends=True)[index_to_choose].strip().split("\t")[-1]  # image_captioning.py:20


def test_export_reads_back_with_the_official_column_meanings(fake_generator, fake_scorer, fake_bank, text_samples,
                                                            tmp_path):
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples)
    store = ResultStore(tmp_path / "run")
    for r in results:
        store.write(r)
    assert main(["export", "official", str(tmp_path / "run"), str(tmp_path / "out")]) == 0
    logs = read_official_logs(tmp_path / "out")
    assert sorted(logs) == sorted(s.id for s in text_samples)
    for result, sample in zip(results, text_samples):
        text = (tmp_path / "out" / sample.id / "log.txt").read_text()
        assert len(text.splitlines()) == 4  # steps + 1 lines, as cleanup.py checks
        assert official_caption(text) == result.caption
        assert official_caption(text, 0) == result.initial.best
        rows = logs[sample.id]
        assert [b for b, _, _ in rows] == pytest.approx([h.best_score for h in result.history])
        # step 0: the mean over the WHOLE bank, not the top-K mean
        bank = fake_scorer.similarity(fake_scorer.embed_samples([sample]), fake_scorer.embed_texts(fake_bank))[0]
        assert rows[0][1] == pytest.approx(float(np.mean(bank)), rel=1e-5)
        assert rows[0][1] < result.initial.mean_topk
        # later steps: the ranking key's top-K mean (key = -score), so find_average_scores' -1 x gives it back
        assert [-m for _, m, _ in rows[1:]] == pytest.approx([h.mean_topk for h in result.history[1:]])


def test_a_minimised_score_keeps_its_sign_and_an_early_stop_repeats_its_last_step(tmp_path):
    style = SampleResult("content", [StepRecord(0, "make it blue", 2.0, 2.5, 4, scored_mean=3.0),
                                     StepRecord(1, "paint it\tblue", 1.5, 1.8, 4)], [("paint it blue", 1.5)],
                         stopped_early_at=1, higher_is_better=False)
    other = SampleResult("b", [StepRecord(0, "x", 1.0, 1.0, 1, scored_mean=1.0)] +
                         [StepRecord(i, "x", 1.0, 1.0, 1) for i in (1, 2)], [("x", 1.0)], higher_is_better=False)
    export_official([style, other], tmp_path)
    rows = read_official_logs(tmp_path)["content"]
    # step 0 of a minimised (style) run: the top-K mean, as main_style_transfer.py logs Scorer.average_value
    assert rows == [(2.0, 2.5, "make it blue"), (1.5, 1.8, "paint it blue"), (1.5, 1.8, "paint it blue")]


def test_a_style_run_logs_its_best_distance_pair_as_the_official_tuple(tmp_path):
    """main_style_transfer.py writes ``best_value[0]``, the (style, content) pair of np.float32s: under
    numpy < 2 (its environment.yml) that prints as ``(0.7, 0.3)``; the pair comes from the step's trace."""
    import ast

    pairs = [(float(np.float32(1.2)), float(np.float32(0.8))), (float(np.float32(0.7)), float(np.float32(0.3)))]
    result = SampleResult("content", [StepRecord(0, "make it blue", sum(pairs[0]), 2.5, 4, scored_mean=3.0),
                                      StepRecord(1, "paint it blue", sum(pairs[1]), 1.8, 4)], [("paint it blue", pairs[1])],
                          trace=[StepTrace([("make it blue", pairs[0])]), StepTrace([("paint it blue", pairs[1])])],
                          higher_is_better=False)
    export_official([result], tmp_path)
    columns = [line.split("\t")[0] for line in (tmp_path / "content" / "log.txt").read_text().splitlines()]
    assert columns == ["(1.2, 0.8)", "(0.7, 0.3)"]
    assert ast.literal_eval(columns[1]) == (0.7, 0.3)  # what a reader of the official tuple gets
    assert [best for best, _, _ in read_official_logs(tmp_path)["content"]] == pytest.approx([2.0, 1.0])


def test_results_from_before_the_bank_mean_was_recorded_export_nan_at_step_0(tmp_path):
    old = SampleResult("a", [StepRecord(0, "a", 0.5, 0.4, 2), StepRecord(1, "b", 0.6, 0.5, 2)], [("b", 0.6)])
    export_official([old], tmp_path)
    assert math.isnan(read_official_logs(tmp_path)["a"][0][1])


@pytest.mark.parametrize("sample_id", ["../escape", "a/b", "..", "x\ny"])
def test_an_id_that_is_no_folder_name_is_refused_before_anything_is_written(tmp_path, sample_id):
    good = SampleResult("good", [StepRecord(0, "a", 0.5, 0.4, 2)], [("a", 0.5)])
    bad = SampleResult(sample_id, [StepRecord(0, "a", 0.5, 0.4, 2)], [("a", 0.5)])
    with pytest.raises(InputError, match="cannot be a folder name"):
        export_official([good, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_malformed_official_log_names_its_line(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "log.txt").write_text("0.3\t0.2\ta cat\nnot a number\tx\n")
    with pytest.raises(InputError, match=r"7/log.txt:2"):
        read_official_logs(tmp_path)


def _results(ids, steps=10):
    return [SampleResult(i, [StepRecord(s, f"caption {n} at step {s}", 0.1 * s, 0.05 * s, 4, scored_mean=0.01)
                             for s in range(steps + 1)], [("x", 1.0)]) for n, i in enumerate(ids)]


def test_every_official_evaluation_script_finds_every_sample_of_an_export(tmp_path):
    """The path rules of the official readers, copied: audio (eval_utils/audio_captioning.py: every
    CSV row's index, OUT/<index>/log.txt, field 2 of the last line), video (video_captioning.py:
    os.walk, the folder's basename, exactly 11 lines), image (image_captioning.py: os.walk,
    int(basename)). Before, the audio reader found 0 of 8 (the export named folders by file name)."""
    import csv
    import os

    from evaluation.datasets import clotho, drawbench
    from evaluation.official_log import official_folders

    (tmp_path / "audio").mkdir()
    names = [f"clip {n}.wav" for n in range(8)]
    with open(tmp_path / "clotho.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", *[f"caption_{k}" for k in range(1, 6)]])
        writer.writerows([[name, *["a bird sings in the morning"] * 5] for name in names])
    audio = _results(list(reversed(names)))  # in another order than the CSV's
    export_official(audio, tmp_path / "audio_out", official_folders(clotho(tmp_path / "clotho.csv", tmp_path / "audio"), audio))
    found = {}
    with open(tmp_path / "clotho.csv", newline="") as f:  # the official reader: pandas' row index
        for index, row in enumerate(csv.DictReader(f)):
            lines = (tmp_path / "audio_out" / f"{index}" / "log.txt").read_text().splitlines(keepends=True)
            found[row["file_name"]] = lines[-1].split("\t")[2].strip()
    assert found == {r.sample_id: r.caption for r in audio}

    (tmp_path / "db.csv").write_text("Prompts,Category\na red cube,Colors\na cat on a mat,Objects\n")
    prompts = _results(["drawbench-001", "drawbench-000"])
    folders = official_folders(drawbench(tmp_path / "db.csv"), prompts)
    assert folders == {"drawbench-001": "1", "drawbench-000": "0"}  # main_image_generation_enhancement.py:43

    video, image = _results(["video7010", "video7011"]), _results(["391895", "522418"])
    export_official(video, tmp_path / "video_out", official_folders(None, video))
    export_official(image, tmp_path / "image_out", official_folders(None, image))
    walked = {}
    for root, _, files in os.walk(tmp_path / "video_out"):
        if "log.txt" in files:
            content = open(os.path.join(root, "log.txt")).readlines()
            if len(content) == 11:  # video_captioning.py skips any other length
                walked[os.path.basename(root)] = content[-1].strip().split("\t")[-1]
    assert walked == {r.sample_id: r.caption for r in video}
    ids = {int(os.path.basename(root)) for root, _, files in os.walk(tmp_path / "image_out") if "log.txt" in files}
    assert ids == {391895, 522418}
