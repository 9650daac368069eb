import csv
import html
import json

import pytest

from human_eval.export import Entry, escape_cell, export_batch, load_system
from human_eval.ingest import ingest, report_text


def _write_results(path, rows, header=("HITId", "WorkerId", "AssignmentId", "Input.pair_id", "Answer.choice")):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_export_writes_blind_files_and_a_separate_key(caption_batch):
    out, manifest = caption_batch
    assert {p.name for p in out.iterdir()} >= {"amt_input.csv", "question.html", "pairs.json", "key.json", "upload"}
    visible = (out / "amt_input.csv").read_text() + (out / "pairs.json").read_text() + (out / "question.html").read_text()
    assert "mils" not in visible.replace("mils human-eval", "") and '"A"' not in visible and "base" not in visible
    rows = list(csv.DictReader((out / "amt_input.csv").open()))
    regular = [p for p in manifest["pairs"].values() if not p["catch"]]
    catches = [p for p in manifest["pairs"].values() if p["catch"]]
    assert len(regular) == 6 and len(catches) == 2 and len(rows) == 8
    assert all(r["context_url"].startswith("upload/") for r in rows)
    assert all((out / r["context_url"]).is_file() for r in rows)
    assert "crowd-form" in (out / "question.html").read_text() and 'name="choice"' in (out / "question.html").read_text()


def test_left_right_is_balanced_and_seeded(tmp_path):
    a = {str(i): Entry(str(i), text=f"a {i}") for i in range(300)}
    b = {str(i): Entry(str(i), text=f"b {i}") for i in range(300)}
    first = export_batch(a, b, tmp_path / "one", axes=["quality"], catch_fraction=0, seed=4)
    lefts = [p["left"] for p in first["pairs"].values()]
    assert 0.42 < lefts.count("A") / len(lefts) < 0.58
    again = export_batch(a, b, tmp_path / "two", axes=["quality"], catch_fraction=0, seed=4)
    assert again["pairs"] == first["pairs"]
    rows = {r["pair_id"]: r for r in csv.DictReader((tmp_path / "one" / "amt_input.csv").open())}
    for pid, info in first["pairs"].items():  # the key says which text is on which side
        left_text = rows[pid]["left_text"]
        assert left_text.startswith("a ") == (info["left"] == "A")


def test_formula_cells_are_escaped(tmp_path):
    a = {"1": Entry("1", text="=HYPERLINK(\"http://x\")")}
    b = {"1": Entry("1", text="+1 cat"), }
    export_batch(a, b, tmp_path / "f", axes=["quality"], catch_fraction=0)
    text = (tmp_path / "f" / "amt_input.csv").read_text()
    # AMT puts these cells into HTML: a formula start becomes its character reference (a spreadsheet
    # does not evaluate it; the worker sees "=" with no stray quote), and the rest is HTML-escaped
    assert "&#61;HYPERLINK(&quot;http://x&quot;)" in text and "&#43;1 cat" in text and "'" not in text
    assert html.unescape("&#61;HYPERLINK(&quot;http://x&quot;)") == '=HYPERLINK("http://x")'
    assert escape_cell("-2") == "'-2" and escape_cell("@x") == "'@x" and escape_cell("a=b") == "a=b"


def test_ingest_majority_catch_trials_and_bad_rows(caption_batch, answer, tmp_path):
    out, manifest = caption_batch
    pairs = manifest["pairs"]
    regular = sorted(p for p, info in pairs.items() if not info["catch"])
    catches = sorted(p for p, info in pairs.items() if info["catch"])
    wanted = {0: ("B", "B"), 1: ("B", "B"), 2: ("B", "B"), 3: ("B", "A"), 4: ("A", "A"), 5: ("A", "A")}
    rows = []
    for n, pid in enumerate(regular):
        w1, w2 = wanted[n]
        rows.append(["h", "w1", f"a1{n}", pid, answer(manifest, pid, w1)])
        rows.append(["h", "w2", f"a2{n}", pid, answer(manifest, pid, w2)])
        rows.append(["h", "w3", f"a3{n}", pid, answer(manifest, pid, "A")])  # w3 votes A always...
    for pid in catches:
        good = pairs[pid]["good"]
        bad = "left" if good == "right" else "right"
        rows += [["h", "w1", "c1", pid, good], ["h", "w2", "c2", pid, good], ["h", "w3", "c3", pid, bad]]  # ...and fails
    rows.append(["h", "w1", "dup", regular[0], answer(manifest, regular[0], "A")])  # duplicate: first kept
    rows.append(["h", "w4", "x", "p-unknown", "left"])
    rows.append(["h", "w4", "y", regular[1], ""])
    rows.append(["h", "w4", "z", regular[1], "left", "EXTRA"])
    first_bad_row = 2 + len(rows) - 4
    _write_results(tmp_path / "results.csv", rows)

    result = ingest(tmp_path / "results.csv", out / "key.json", resamples=200)
    rates = result.rates["faithfulness"]
    assert rates["pairs"] == 6
    assert rates["win"]["value"] == pytest.approx(3 / 6)
    assert rates["tie"]["value"] == pytest.approx(1 / 6)
    assert rates["lose"]["value"] == pytest.approx(2 / 6)
    assert rates["win"]["ci_low"] <= 0.5 <= rates["win"]["ci_high"]
    assert list(result.dropped_workers) == ["w3"]
    problems = "\n".join(result.problems)
    assert f"row {first_bad_row}: duplicate assignment" in problems
    assert f"row {first_bad_row + 1}: unknown pair id 'p-unknown'" in problems
    assert f"row {first_bad_row + 2}: missing or invalid answer" in problems
    assert f"row {first_bad_row + 3}: malformed" in problems
    assert set(result.by_category["faithfulness"]) == {"c0", "c1"}
    text = report_text(result)
    assert "mils vs base" in text and "win 50.0%" in text and "dropped worker w3" in text


def test_ingest_names_bad_files(caption_batch, tmp_path):
    out, _ = caption_batch
    with pytest.raises(FileNotFoundError, match="results file not found"):
        ingest(tmp_path / "nope.csv", out / "key.json")
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no pair id / choice columns"):
        ingest(tmp_path / "wrong.csv", out / "key.json")


def test_load_system_from_json_and_results_folder(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "a.json").write_text(json.dumps({"1": "a cat", "2": {"image": "x.png", "prompt": "p", "category": "c"}}))
    side = load_system(tmp_path / "a.json")  # an image path is relative to the file
    assert side["1"].text == "a cat" and side["2"].image == str(tmp_path / "x.png") and side["2"].category == "c"
    (tmp_path / "bad.json").write_text(json.dumps({"1": 3}))
    with pytest.raises(ValueError, match="entry '1'"):
        load_system(tmp_path / "bad.json")
    from mils.engine.records import SampleResult, StepRecord
    from mils.storage.results import ResultStore

    store = ResultStore(tmp_path / "run")
    store.write(SampleResult("img1", [StepRecord(0, "first", 0.1, 0.1, 3), StepRecord(1, "second", 0.2, 0.15, 2)], []))
    assert load_system(tmp_path / "run", "step0")["img1"].text == "first"
    assert load_system(tmp_path / "run")["img1"].text == "second"


def test_identical_outputs_are_not_shown_and_count_as_ties(tmp_path):
    a = {str(i): Entry(str(i), text=f"caption {i}") for i in range(4)}
    b = {**a, "3": Entry("3", text="a better caption")}
    manifest = export_batch(a, b, tmp_path / "b", axes=["quality"], catch_fraction=0)
    assert len(manifest["pairs"]) == 1 and set(manifest["identical"]) == {"0", "1", "2"}
    (pid, info), = manifest["pairs"].items()
    _write_results(tmp_path / "r.csv", [["h", "w1", "x", pid, "left" if info["left"] == "B" else "right"]])
    rates = ingest(tmp_path / "r.csv", tmp_path / "b" / "key.json", resamples=50).rates["quality"]
    assert rates["pairs"] == 4 and rates["win"]["value"] == 0.25 and rates["tie"]["value"] == 0.75
    with pytest.raises(ValueError, match="identical"):
        export_batch(a, dict(a), tmp_path / "c", axes=["quality"])


def test_rates_are_logged_to_the_mlflow_run_that_made_the_pairs(caption_batch, answer, tmp_path):
    import mlflow

    from human_eval.ingest import log_to_mlflow

    out, manifest = caption_batch
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = mlflow.tracking.MlflowClient(uri)
    run = client.create_run(client.create_experiment("pairs"))
    regular = sorted(p for p, info in manifest["pairs"].items() if not info["catch"])
    _write_results(tmp_path / "r.csv", [["h", "w1", str(n), pid, answer(manifest, pid, "B")]
                                        for n, pid in enumerate(regular)])
    result = ingest(tmp_path / "r.csv", out / "key.json", resamples=50)
    log_to_mlflow(result, run.info.run_id, uri)
    logged = client.get_run(run.info.run_id)
    assert logged.data.metrics["human/faithfulness/win"] == 1.0
    assert {"human/faithfulness/win_ci_low", "human/faithfulness/lose"} <= set(logged.data.metrics)


@pytest.mark.parametrize("pictured", ["A", "B"])
def test_every_pair_shows_the_picture_whichever_side_carries_it(photo_dir, tmp_path, pictured):
    """Issue 47, item 3: captions from a JSON file (no image) against a results folder (the image),
    in both orders: every row, catch trials included, shows the picture being captioned."""
    photos = sorted(photo_dir.glob("*.jpg"))
    ids = [f"s{i}" for i in range(4)]
    with_image = {i: Entry(i, text=f"a photo of thing {n}", context_image=str(photos[n % len(photos)]))
                  for n, i in enumerate(ids)}
    bare = {i: Entry(i, text=f"another caption {n}") for n, i in enumerate(ids)}
    a, b = (with_image, bare) if pictured == "A" else (bare, with_image)
    export_batch(a, b, tmp_path / "batch", axes=["faithfulness"], seed=2, catch_fraction=0.5)
    rows = list(csv.DictReader((tmp_path / "batch" / "amt_input.csv").open()))
    assert len(rows) == 6 and all(r["context_url"].startswith("upload/") for r in rows)


def test_a_refused_export_leaves_no_upload_folder(photo_dir, tmp_path):
    from mils.errors import InputError

    photo = str(sorted(photo_dir.glob("*.jpg"))[0])
    same = {"s": Entry("s", text="a cat", context_image=photo)}
    with pytest.raises(InputError, match="identical outputs"):
        export_batch(same, dict(same), tmp_path / "batch", axes=["faithfulness"], catch_fraction=0.0)
    assert not (tmp_path / "batch" / "upload").exists()


def test_a_batch_chooses_the_mlflow_run_for_judgements_only_when_this_user_sealed_it(photo_dir, tmp_path, capsys):
    """Issue 47 (low): a batch's key.json chose the MLflow run that judgements were written into."""
    import json

    from cli.human import _sealed_run_id

    photo = str(sorted(photo_dir.glob("*.jpg"))[0])
    a = {"s": Entry("s", text="a cat", context_image=photo)}
    b = {"s": Entry("s", text="a dog", context_image=photo)}
    export_batch(a, b, tmp_path / "batch", axes=["faithfulness"], catch_fraction=0.0, run_id="a" * 32)
    assert _sealed_run_id(tmp_path / "batch") == "a" * 32  # our own export: logged where it says
    key = json.loads((tmp_path / "batch" / "key.json").read_text())
    key["mlflow_run_id"] = "b" * 32  # a batch from elsewhere naming someone's run
    (tmp_path / "batch" / "key.json").write_text(json.dumps(key))
    assert _sealed_run_id(tmp_path / "batch") is None
    assert "no export of yours sealed" in capsys.readouterr().err
