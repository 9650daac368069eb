"""Headless Chromium drives the local judging page: answer three pairs, reload, export, ingest."""

import urllib.request

import pytest

from human_eval.ingest import ingest
from human_eval.server import create_app
from tests.browser import launch_chromium, served

pytestmark = pytest.mark.slow


@pytest.fixture
def server(caption_batch):
    out, manifest = caption_batch
    with served(create_app(out)) as url:
        yield url, out, manifest


def test_rater_answers_three_pairs_reloads_and_the_export_ingests(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, batch, manifest = server
    total = len(manifest["pairs"])
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url)
        page.fill("#name", "carol")
        page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_have_text(f"0 / {total} done")
        for n, key in enumerate(["1", "ArrowRight", "2"], start=1):
            page.keyboard.press(key)
            page.keyboard.press("a")  # tick the first reason
            expect(page.locator("#submit")).to_be_enabled()
            if n == 3:
                page.screenshot(path=str(tmp_path / "judge_page.png"), full_page=True)
            page.keyboard.press("Enter")
            expect(page.locator("#progress")).to_have_text(f"{n} / {total} done")
        page.reload()  # the rater is remembered and resumes after the answered pairs
        expect(page.locator("#progress")).to_have_text(f"3 / {total} done")
        expect(page.locator("#who")).to_have_text("carol")
        browser.close()

    export = urllib.request.urlopen(f"{url}/api/export").read().decode()
    (tmp_path / "export.csv").write_text(export)
    rows = export.strip().splitlines()[1:]
    assert len(rows) == 3 and all(",carol," in r for r in rows)
    assert all(r.split(",")[4] == "on" for r in rows)  # reason 0 ticked by the 'a' key
    result = ingest(tmp_path / "export.csv", batch / "key.json")
    assert result.problems == []
    answered = [(r.split(",")[0], r.split(",")[1]) for r in rows]
    pairs = manifest["pairs"]
    failed_catch = any(pairs[pid]["catch"] and choice != pairs[pid]["good"] for pid, choice in answered)
    assert bool(result.dropped_workers) == failed_catch  # computed from the key, not from the result
    assert result.votes == (0 if failed_catch else sum(1 for pid, _ in answered if not pairs[pid]["catch"]))
