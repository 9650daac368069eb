"""`mils view` on a results folder that someone else wrote: every field is treated as hostile."""

import json
import os

import pytest

from human_eval.viewer import RunIndex, create_app
from tests.browser import launch_chromium, served
from tests.conftest import local_client
from tests.human_eval.test_viewer import run_dir  # noqa: F401  (the fixture)

XSS = "<img src=x onerror=alert(1)>"


def _files(folder):
    return sorted((folder / "samples").glob("*.json"))


def _edit(path, change):
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    return raw


def test_bad_files_are_listed_and_the_rest_of_the_run_opens(run_dir):  # noqa: F811
    folder, _ = run_dir
    files = _files(folder)
    step = _edit(files[0], lambda r: r["history"][0].update(step=XSS))["sample_id"]
    score = _edit(files[1], lambda r: r["history"][1].update(best_score="0.9"))["sample_id"]
    (folder / "samples" / "x.json").mkdir()
    (folder / "failed" / "nothing.json").write_text(json.dumps({"sample_id": "n"}))  # no error
    (folder / ".viewer_index.json").write_text('{"files": {"a": [1, {"sample_id": 5}]}, "x": ')
    (folder / "config.json").write_text("{not json")
    index = RunIndex(folder)
    page = index.page()
    problems = dict(page["problems"])
    assert f"samples/{files[0].name}" in problems and "history[0].step is not a whole number" in \
        problems[f"samples/{files[0].name}"]
    assert "history[1].best_score is not a number ('0.9')" in problems[f"samples/{files[1].name}"]
    assert "samples/x.json" in problems and "failed/nothing.json" in problems and "config.json" in problems
    shown = {r["sample_id"] for r in page["rows"]}
    assert step not in shown and score not in shown and len(shown) == 4  # 3 good samples and the failure
    assert page["name"] == ""  # the unreadable config names nothing


def test_media_are_served_only_as_real_media_files_inside_the_run_or_its_media_root(run_dir, tmp_path):  # noqa: F811
    folder, results = run_dir
    (tmp_path / "link.jpg").symlink_to("/etc/passwd")
    (tmp_path / "noext").write_text("secret")
    (folder / "fake.jpg").write_text("not an image")
    files = _files(folder)
    client = local_client(create_app(RunIndex(folder)))
    ids = []
    for path, media in zip(files, [str(tmp_path / "link.jpg"), str(tmp_path / "noext"), str(folder / "fake.jpg"),
                                   "/etc/passwd"]):
        ids.append(_edit(path, lambda r, m=media: r.update(media=m))["sample_id"])
    for sample_id in ids:
        response = client.get("/media", params={"id": sample_id})
        assert response.status_code == 404 and b"root:" not in response.content, sample_id
    good = next(r.sample_id for r in results if r.sample_id not in ids)
    assert client.get("/media", params={"id": good}).headers["content-type"] == "image/jpeg"


def test_a_sample_id_with_a_slash_gets_its_media(run_dir, photo_dir):  # noqa: F811
    folder, _ = run_dir
    path = _files(folder)[0]
    _edit(path, lambda r: r.update(sample_id="val2014/COCO_1.jpg", media=str(photo_dir / "chelsea.jpg")))
    index = RunIndex(folder)
    url = index.detail("val2014/COCO_1.jpg")["media"]["url"]
    assert local_client(create_app(index)).get(url).headers["content-type"] == "image/jpeg"


def test_the_page_has_a_policy_against_inline_script_and_a_loopback_server_checks_the_host(run_dir):  # noqa: F811
    folder, _ = run_dir
    client = local_client(create_app(RunIndex(folder)))
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    assert client.get("/api/samples").status_code == 200
    # DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own name as the Host
    assert client.get("/api/samples", headers={"host": "evil.example:8766"}).status_code == 403
    assert client.get("/api/samples", headers={"host": "[::1]:8766"}).status_code == 200


def test_a_viewer_for_the_network_needs_its_token(run_dir):  # noqa: F811
    from fastapi.testclient import TestClient

    folder, _ = run_dir
    client = TestClient(create_app(RunIndex(folder), token="s3cret", loopback_only=False), base_url="http://labhost")
    assert client.get("/").status_code == 403 and client.get("/api/samples").status_code == 403
    assert client.get("/", params={"token": "wrong"}).status_code == 403
    assert client.get("/", params={"token": "s3cret"}).status_code == 200
    assert client.get("/api/samples").status_code == 200  # the link's cookie carries it from then on


def test_cli_view_refuses_a_missing_folder_at_once_and_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["view", "no/such/run"]) == 2
    assert "no such results folder: no/such/run" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # no mlruns.db


@pytest.mark.slow
def test_injected_markup_never_runs_in_the_browser(run_dir):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    folder, _ = run_dir
    files = _files(folder)
    _edit(files[0], lambda r: r["history"][0].update(step=XSS))  # refused by the reader
    shown = _edit(files[1], lambda r: r["history"][-1].update(best=XSS))["sample_id"]  # shown, as text
    index = RunIndex(folder)
    dialogs, errors = [], []
    with served(create_app(index)) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.on("dialog", lambda d: dialogs.append(d.message) or d.dismiss())
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        expect(page.locator("#problems")).to_contain_text("history[0].step is not a whole number")
        page.locator(f"#rows tr[data-id='{shown}']").click()
        expect(page.locator("#best")).to_have_text(XSS)
        page.keyboard.press("ArrowLeft")
        page.locator("#rows tr[data-id='broken']").click()  # a failed sample, then the arrow keys
        expect(page.locator("#detail")).to_contain_text("failed")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowRight")
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'alert(2)';"
                      " document.body.appendChild(s); }")  # the policy stops inline script outright
        page.wait_for_timeout(300)
        browser.close()
    assert dialogs == [] and errors == []


def test_a_media_root_the_folder_names_for_itself_widens_nothing(run_dir, tmp_path, photo_dir):  # noqa: F811
    """media.json from elsewhere saying ``"/"``: the viewer serves nothing outside the folder (and says
    why) and the export copies nothing from there, unless the user names the root."""
    from human_eval.export import load_system

    folder, results = run_dir
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes((photo_dir / "chelsea.jpg").read_bytes())
    path = _files(folder)[0]
    sample_id = _edit(path, lambda r: r.update(media=str(outside)))["sample_id"]
    (folder / "media.json").write_text(json.dumps({"media_root": "/"}))  # unsealed, as a stranger writes it
    index = RunIndex(folder)
    assert any("media.json names /" in why for _, why in index.page()["problems"])
    assert local_client(create_app(index)).get("/media", params={"id": sample_id}).status_code == 404
    with pytest.raises(Exception, match="elsewhere.png"):
        load_system(str(folder), "final")
    trusted = RunIndex(folder, media_roots=(str(tmp_path),))  # the user's say-so
    assert local_client(create_app(trusted)).get("/media", params={"id": sample_id}).status_code == 200


def test_a_pipe_among_the_results_is_listed_not_read_forever(run_dir):  # noqa: F811
    import threading

    folder, results = run_dir
    os.mkfifo(folder / "samples" / "zz-pipe.json")
    os.mkfifo(folder / "media.json.fifo")
    page = {}
    reader = threading.Thread(target=lambda: page.update(RunIndex(folder).page()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "the viewer blocked on a pipe"
    assert any("zz-pipe.json" in path and "not a regular file" in why for path, why in page["problems"])


def test_a_page_names_the_first_problems_and_counts_the_rest(run_dir):  # noqa: F811
    from human_eval.viewer import PROBLEMS_SHOWN

    folder, _ = run_dir
    for n in range(PROBLEMS_SHOWN + 10):
        (folder / "samples" / f"corrupt-{n:03d}.json").write_text("{not json")
    page = RunIndex(folder).page()
    assert page["problem_count"] >= PROBLEMS_SHOWN + 10 and len(page["problems"]) == PROBLEMS_SHOWN


def test_a_viewer_cache_far_larger_than_its_rows_is_rebuilt_not_read(run_dir, monkeypatch):  # noqa: F811
    import human_eval.viewer as viewer

    folder, _ = run_dir
    before = RunIndex(folder).page()["samples"]
    cache = folder / ".viewer_index.json"
    monkeypatch.setattr(viewer, "INDEX_BYTES_PER_FILE", 8)  # as if the cache were gigabytes
    cache.write_bytes(b'{"version": 0, "files": {}}' + b" " * 10_000)
    read = []
    real = viewer.orjson.loads
    monkeypatch.setattr(viewer.orjson, "loads", lambda data: read.append(len(data)) or real(data))
    assert RunIndex(folder).page()["samples"] == before
    assert all(n < 10_000 for n in read)  # the oversized cache was never read whole
