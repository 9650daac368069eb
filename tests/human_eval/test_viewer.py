"""`mils view`: the run index and its API, then headless Chromium drives the page."""

import dataclasses
import io
import json

import pytest

from human_eval.viewer import RunIndex, create_app
from mils.protocols import Sample
from mils.storage.results import ResultStore, result_to_dict
from mils.storage.run_folder import write_media_root
from tests.browser import launch_chromium, served
from tests.conftest import local_client, paired, write_run_record
from tests.mils.engine.test_loop import make_optimiser


@pytest.fixture
def run_dir(tmp_path, fake_generator, fake_scorer, fake_bank, text_samples, photo_dir):
    """A results folder of the fake loop (3 steps), photos as the samples' media, one failure."""
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples)
    photos = sorted(photo_dir.glob("*.jpg"))
    store = ResultStore(tmp_path / "run")
    for n, r in enumerate(results):
        store.write(dataclasses.replace(r, media=str(photos[n % len(photos)])))
    store.write_failure("broken", "unreadable image broken.jpg")
    (tmp_path / "run" / "config.json").write_text(json.dumps({"name": "viewer-test", "task": "image_captioning"}))
    write_media_root(tmp_path / "run", [Sample(p.name, p) for p in photos])  # as the flow records it
    (tmp_path / "secret.txt").write_text("not for the browser")
    return tmp_path / "run", results


def test_index_sorts_filters_and_pages(run_dir):
    folder, results = run_dir
    index = RunIndex(folder)
    page = index.page()
    assert page["samples"] == 6 and page["failed"] == 1 and page["total"] == 6 and not page["lower_is_better"]
    gains = {r.sample_id: r.score - r.initial.best_score for r in results}
    by_gain = index.page("gain", descending=True)["rows"]
    assert [r["sample_id"] for r in by_gain[:5]] == sorted(gains, key=gains.get, reverse=True)
    assert by_gain[-1]["sample_id"] == "broken" and by_gain[-1]["error"].startswith("unreadable")  # no score: last
    assert [r["sample_id"] for r in index.page(filter="failed")["rows"]] == ["broken"]
    assert {r["sample_id"] for r in index.page(filter="no_gain")["rows"]} == {k for k, g in gains.items() if g <= 0}
    second = index.page(offset=2, limit=2)
    assert second["total"] == 6 and [r["sample_id"] for r in second["rows"]] == ["s1", "s2"]  # after broken, s0
    with pytest.raises(ValueError, match="sort is one of"):
        index.page("nonsense")


def test_sample_detail_marks_parsed_reply_lines_and_serves_only_run_media(run_dir):
    folder, results = run_dir
    result = results[0]
    detail = RunIndex(folder).detail("s0")
    assert [s["best"] for s in detail["steps"]] == [h.best for h in result.history]
    assert detail["steps"][0]["reply"] is None and detail["steps"][2]["kept"][0][0] == result.history[2].best
    for step, reply in zip(detail["steps"][1:], result.raw_replies):
        assert [line["line"] for line in step["reply"]] == [x for x in reply.splitlines() if x.strip()]
        assert sum(line["parsed"] for line in step["reply"]) == len(step["new"]) == step["new_unique"]

    client = local_client(create_app(RunIndex(folder)))
    assert client.get(detail["media"]["url"]).headers["content-type"] == "image/jpeg"
    assert client.get("/api/sample", params={"id": "nope"}).status_code == 404
    assert client.get("/api/sample", params={"id": "broken"}).status_code == 409
    for path in ("/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/config.json", "/media/..%2Fsecret.txt"):
        assert client.get(path).status_code == 404, path


def test_a_result_file_without_trace_still_opens(run_dir):
    folder, _ = run_dir
    path = next((folder / "samples").glob("*.json"))
    raw = json.loads(path.read_text())
    raw.pop("trace")
    path.write_text(json.dumps({**raw, "schema": 2}))
    detail = RunIndex(folder).detail(raw["sample_id"])
    assert all(s["kept"] is None for s in detail["steps"]) and detail["steps"][1]["reply"] is not None


def test_text_to_image_output_opens_with_step_images(tmp_path, run_dir):
    _, results = run_dir
    folder = tmp_path / "t2i" / "prompt000"
    folder.mkdir(parents=True)
    for n in range(4):
        (folder / f"step{n:02d}.png").write_bytes(b"png")
    (folder / "result.json").write_text(json.dumps({"prompt": "p", **result_to_dict(results[0])}))
    index = RunIndex(tmp_path / "t2i")
    steps = index.detail(results[0].sample_id)["media"]["steps"]
    assert steps == [f"/files/prompt000/step{n:02d}.png" for n in range(4)]


@pytest.mark.slow
def test_browser_sorts_opens_a_sample_and_steps_through(run_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from evaluation.caption_metrics import cached_caption_metrics

    folder, results = run_dir
    best = max(results, key=lambda r: r.score - r.initial.best_score)
    references = {r.sample_id: [f"reference {n} of {r.sample_id}" for n in range(2)] for r in results}
    references[best.sample_id] = [best.caption, "<b>a second</b> reference"]  # the final caption is a reference
    for step in (0, -1):  # the metrics cache, as the run's tables left it: step 0's captions and the final ones
        cached_caption_metrics({r.sample_id: r.at_step(step).best for r in results}, references, ["CIDEr", "BLEU"],
                               cache_dir=folder / "metrics")
    with served(create_app(RunIndex(folder, references=references))) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        expect(page.locator("#range")).to_have_text("1\u20136 of 6")
        page.click("th[data-sort=gain]")  # biggest gain first
        expect(page.locator("#rows tr").first).to_have_attribute("data-id", best.sample_id)
        page.select_option("#filter", "failed")
        expect(page.locator("#rows tr")).to_have_count(1)
        expect(page.locator("#rows tr td").last).to_contain_text("unreadable image")
        page.select_option("#filter", "all")
        page.locator("#rows tr").first.click()
        expect(page.locator("#sid")).to_have_text(best.sample_id)
        expect(page.locator("#stepname")).to_have_text("step 3 of 3")
        expect(page.locator("#best")).to_have_text(best.caption)
        expect(page.locator("#refs li")).to_have_text([best.caption, "<b>a second</b> reference"])  # text, not markup
        final_cider = page.locator("#scores").inner_text().split("CIDEr ")[1].split(" \u2192 ")[1].split()[0]
        assert float(final_cider) > 0 and "BLEU-4" in page.locator("#scores").inner_text()
        expect(page.locator("#media img")).to_have_js_property("complete", True)
        assert page.locator("#media img").evaluate("im => im.naturalWidth") > 0  # the photo itself loaded
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#stepname")).to_have_text("step 2 of 3")
        expect(page.locator("#best")).to_have_text(best.history[2].best)
        assert page.locator("#reply .parsed").count() == best.history[2].new_unique
        assert page.locator("#reply .dropped").count() + page.locator("#reply .parsed").count() == len(
            [x for x in best.raw_replies[1].splitlines() if x.strip()])
        page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#stepname")).to_have_text("step 0 of 3")
        expect(page.locator("#reply")).to_contain_text("step 0 asks no LLM")
        page.reload()  # the open sample is in the address
        expect(page.locator("#sid")).to_have_text(best.sample_id)
        browser.close()


def test_cli_view_names_a_folder_that_is_not_a_run(tmp_path, capsys):
    from cli.main import main

    assert main(["view", str(tmp_path)]) == 2
    assert "is not a run" in capsys.readouterr().err


def test_row_cache_is_reused_and_follows_changed_files(run_dir, monkeypatch):
    from human_eval import viewer

    folder, results = run_dir
    first = RunIndex(folder).page()["rows"]
    assert (folder / ".viewer_index.json").is_file()
    reads = []
    real = viewer._summary
    monkeypatch.setattr(viewer, "_summary", lambda path: reads.append(path.name) or real(path))
    assert RunIndex(folder).page()["rows"] == first and reads == []  # nothing re-read
    changed = dataclasses.replace(results[1], history=results[1].history[:2])
    ResultStore(folder).write(changed)
    rows = {r["sample_id"]: r for r in RunIndex(folder).page()["rows"]}
    assert len(reads) == 1 and rows["s1"]["steps"] == 1 and rows["s1"]["final"] == changed.score


def test_video_samples_get_a_frame_strip_and_audio_samples_their_file(run_dir, tmp_path):
    from PIL import Image

    from tests.conftest import write_audio, write_video

    folder, results = run_dir
    video, audio = write_video(folder / "clip.mp4", 30), write_audio(folder / "bark.wav")  # inside the run folder
    store = ResultStore(folder)
    store.write(dataclasses.replace(results[0], media=str(video)))
    store.write(dataclasses.replace(results[1], media=str(audio)))
    index = RunIndex(folder)
    assert index.detail("s0")["media"]["kind"] == "video" and index.detail("s1")["media"]["kind"] == "audio"
    client = local_client(create_app(index))
    strip = client.get(index.detail("s0")["media"]["url"])
    assert strip.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(strip.content))
    assert image.height == 120 and image.width > 5 * 120  # six frames side by side
    sound = client.get(index.detail("s1")["media"]["url"])
    assert sound.status_code == 200 and sound.content == audio.read_bytes()


def test_the_viewer_shows_the_runs_headline_and_filters_the_most_hurt(run_dir):
    """Issue 48, item 4: a summary strip (the headline sentence) and most improved / most hurt filters."""
    import json

    folder, results = run_dir
    write_run_record(folder, score_gain={"wins": 4, "ties": 1, "losses": 1, **paired(0.7, 0.741, 0.0, 0.122)})
    for n, path in enumerate(sorted((folder / "samples").glob("*.json"))[:2]):  # two samples made worse
        raw = json.loads(path.read_text())
        raw["history"][-1]["best_score"] = raw["history"][0]["best_score"] - 0.1 * (n + 1)
        path.write_text(json.dumps(raw))
    page = RunIndex(folder).page()
    assert page["headline"].startswith("MILS raised the optimised score on 4 of 6 samples")
    hurt = RunIndex(folder).page(filter="hurt", sort="gain")["rows"]
    assert [round(r["gain"], 6) for r in hurt] == [-0.2, -0.1]  # the most hurt first


def test_cli_view_shows_the_references_of_the_runs_dataset(run_dir, monkeypatch, capsys):
    """`mils view` reads the references from the dataset the folder's config names; one that does not
    load is one line, and the viewer still opens."""
    import uvicorn

    import evaluation.datasets
    from cli.main import main

    folder, results = run_dir
    served_apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served_apps.append(app))
    monkeypatch.setattr(evaluation.datasets, "folder_references", lambda f, instead: {results[0].sample_id: ["a ref"]})
    assert main(["view", str(folder)]) == 0
    sample = local_client(served_apps[-1]).get("/api/sample", params={"id": results[0].sample_id}).json()
    assert sample["references"] == ["a ref"]

    monkeypatch.undo()
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served_apps.append(app))
    assert main(["view", str(folder)]) == 0  # this folder's config.json is no full config: no references
    assert "view: " in capsys.readouterr().err and len(served_apps) == 2
