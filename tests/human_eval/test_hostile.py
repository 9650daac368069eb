"""The judging page and the batch files against a hostile or careless user."""

import csv
import io
import json

import httpx
import pytest

from human_eval import invites
from human_eval.export import Entry, export_batch, load_system
from human_eval.ingest import ingest, report_text
from human_eval.server import create_app
from mils.errors import InputError
from tests.browser import served
from tests.conftest import local_client


def test_a_network_server_stays_closed_when_its_invite_file_disappears_or_breaks(caption_batch):
    out, _ = caption_batch
    tokens = invites.invite(out, ["ann"])
    with served(create_app(out, require_invites=True)) as url:
        ok = httpx.get(f"{url}/api/next", params={"invite": tokens["ann"]})
        assert ok.status_code == 200 and ok.json()["rater"] == "ann"
        (out / "invites.json").write_text("")  # emptied while the server runs
        assert httpx.get(f"{url}/api/next", params={"rater": "anyone"}).status_code == 503
        assert httpx.get(f"{url}/api/export").status_code == 503
        (out / "invites.json").unlink()  # deleted
        for path in ("/", "/api/next?rater=anyone", "/api/export"):
            assert httpx.get(url + path).status_code == 403, path
        answer = httpx.post(f"{url}/api/answer", json={"rater": "eve", "pair_id": "p", "choice": "left"})
        assert answer.status_code == 403


def test_a_loopback_server_started_with_invites_stays_in_invite_mode(caption_batch):
    out, _ = caption_batch
    invites.invite(out, ["ann"])
    client = local_client(create_app(out))
    (out / "invites.json").unlink()
    assert client.get("/api/next", params={"rater": "eve"}).status_code == 403


def test_a_broken_invite_file_does_not_tell_the_user_to_delete_it(caption_batch):
    out, _ = caption_batch
    (out / "invites.json").write_text("{")
    with pytest.raises(InputError, match="serves nobody until it is restored") as err:
        invites.read(out)
    assert "delete it" not in str(err.value)


def test_bodies_are_bounded_checked_after_the_link_and_never_echoed(caption_batch):
    out, _ = caption_batch
    tokens = invites.invite(out, ["ann"])
    client = local_client(create_app(out))
    huge = "x" * 1_000_000
    refused = client.post("/api/answer", content=json.dumps({"pair_id": huge, "choice": "left"}),
                          headers={"content-type": "application/json"})
    assert refused.status_code == 413 and len(refused.content) < 200
    no_link = client.post("/api/answer", json={"pair_id": "p" * 60, "choice": "left"})
    assert no_link.status_code == 403  # the link first, the body after
    unknown = client.post("/api/answer", json={"pair_id": "q" * 60, "choice": "left"}, headers={"x-invite": tokens["ann"]})
    assert unknown.status_code == 404 and "q" * 60 not in unknown.text


def test_rater_names_with_a_newline_are_refused_and_the_export_escapes_formula_names(caption_batch):
    out, manifest = caption_batch
    with pytest.raises(InputError, match="rater name"):
        invites.invite(out, ["evil\n"])
    client = local_client(create_app(out))
    assert client.get("/api/next", params={"rater": "bob\n"}).status_code == 400
    pid = client.get("/api/next", params={"rater": "@bob"}).json()["pair"]["pair_id"]
    assert client.post("/api/answer", json={"rater": "@bob", "pair_id": pid, "choice": "left"}).json()["stored"]
    row = next(csv.DictReader(io.StringIO(client.get("/api/export").text)))
    assert row["WorkerId"] == "'@bob"


def test_export_takes_only_real_media_from_a_side_s_own_folder(tmp_path, photo_dir):
    (tmp_path / "a.json").write_text(json.dumps({"s1": {"image": "/etc/passwd"}}))
    with pytest.raises(InputError, match="outside"):
        load_system(tmp_path / "a.json")
    (tmp_path / "passwd.png").write_text("root:x:0:0")
    (tmp_path / "b.json").write_text(json.dumps({"s1": {"image": "passwd.png"}}))
    with pytest.raises(InputError, match="unreadable image"):
        load_system(tmp_path / "b.json")


def test_export_refuses_a_results_folder_whose_media_are_missing(tmp_path, photo_dir):
    from mils.engine.records import SampleResult, StepRecord
    from mils.storage.results import ResultStore

    store = ResultStore(tmp_path / "run")
    history = [StepRecord(0, "first", 0.1, 0.1, 3), StepRecord(1, "second", 0.2, 0.15, 2)]
    store.write(SampleResult("img1", history, [], media="photos/gone.jpg"))  # relative: from another folder
    with pytest.raises(InputError, match=r"1 sample\(s\) .* no usable media.*img1"):
        load_system(tmp_path / "run")


def test_question_html_cells_are_escaped(tmp_path):
    a = {"1": Entry("1", text="<script>steal()</script>")}
    b = {"1": Entry("1", text="a cat")}
    export_batch(a, b, tmp_path / "q", axes=["quality"], catch_fraction=0)
    text = (tmp_path / "q" / "amt_input.csv").read_text()
    assert "<script>" not in text and "&lt;script&gt;steal()&lt;/script&gt;" in text


def test_ingest_survives_huge_cells_cp1252_bad_keys_and_escape_codes(caption_batch, answer, tmp_path):
    out, manifest = caption_batch
    pid = sorted(p for p, info in manifest["pairs"].items() if not info["catch"])[0]
    rows = [["Input.pair_id", "Answer.choice", "WorkerId", "Answer.comment"],
            [pid, answer(manifest, pid, "B"), "w\x1b[31mred", "x" * 1_000_000],
            [pid, answer(manifest, pid, "B"), "caf\u00e9", "fine"]]
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="cp1252") as f:
        csv.writer(f).writerows(rows)
    result = ingest(path, out / "key.json")
    assert result.votes == 2 and "\x1b" not in report_text(result)
    for bad in ("{", json.dumps({"names": {}}), json.dumps({"pairs": {"p1": {"axis": "q"}}})):
        (tmp_path / "key.json").write_text(bad)
        with pytest.raises(InputError, match="unblinding key"):
            ingest(path, tmp_path / "key.json")


def test_eval_refuses_references_that_are_not_captions(tmp_path, capsys):
    from cli.main import main

    (tmp_path / "p.json").write_text(json.dumps({"a": "a cat"}))
    (tmp_path / "r.json").write_text(json.dumps({"a": [1]}))
    assert main(["eval", "--predictions", str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json")]) == 2
    assert "references must map id -> a list of caption strings" in capsys.readouterr().err


def test_state_changing_requests_must_be_json_from_the_page_s_own_origin(caption_batch):
    out, manifest = caption_batch
    client = local_client(create_app(out))
    pid = next(iter(manifest["pairs"]))
    body = json.dumps({"rater": "mallory", "pair_id": pid, "choice": "left"})
    for headers in ({"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {},
                    {"content-type": "application/json", "origin": "http://127.0.0.1:1"},
                    {"content-type": "application/json", "origin": "null"},
                    {"content-type": "application/json", "sec-fetch-site": "cross-site"}):
        refused = client.post("/api/answer", content=body, headers=headers)
        assert refused.status_code in (403, 415), headers
    same = client.post("/api/answer", content=body, headers={"content-type": "application/json; charset=utf-8",
                                                            "origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"})
    assert same.status_code == 200
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export").text)))
    assert [r["WorkerId"] for r in rows] == ["mallory"]  # one row: only the page's own request was stored


def test_a_page_of_another_origin_stores_nothing_in_a_real_browser(caption_batch):
    """What the probe did from another loopback origin in Chromium: a text/plain fetch, a Blob and a
    plain HTML form, all at the judging page's answer route."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_chromium

    out, manifest = caption_batch
    pid = next(iter(manifest["pairs"]))
    with served(create_app(out)) as target:
        attacker = FastAPI()
        body = json.dumps({"rater": "mallory", "pair_id": pid, "choice": "left"})
        page_html = f"""<html><body><form id=f method=post action="{target}/api/answer" enctype="text/plain">
<input name='{body[:-1]}, "x": "' value='"}}'></form><script>
const b = {json.dumps(body)};
Promise.allSettled([
  fetch("{target}/api/answer", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body: b}}),
  fetch("{target}/api/answer", {{method: "POST", mode: "no-cors", body: new Blob([b])}}),
]).then(() => {{ document.title = "sent"; document.getElementById("f").submit(); }});
</script></body></html>"""
        attacker.get("/")(lambda: HTMLResponse(page_html))
        with served(attacker) as evil, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page()
            page.goto(evil.replace("127.0.0.1", "localhost") + "/")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)
            browser.close()
        assert "mallory" not in httpx.get(f"{target}/api/export").text


def test_rater_names_differing_only_in_spaces_are_one_rater(caption_batch, answer):
    out, manifest = caption_batch
    client = local_client(create_app(out))
    pairs = sorted(manifest["pairs"])
    for name, pid in zip(("bob", " bob", "bob "), pairs):
        assert client.post("/api/answer", json={"rater": name, "pair_id": pid, "choice": "left"}).status_code == 200
    assert {row.split(",")[2] for row in client.get("/api/export").text.splitlines()[1:]} == {"bob"}


def test_a_chunked_body_over_the_limit_and_a_full_disk_get_json_answers(caption_batch, monkeypatch):
    import sqlite3

    out, manifest = caption_batch
    with served(create_app(out)) as url:
        def chunks():
            for _ in range(200):
                yield b"x" * 4096
        big = httpx.post(f"{url}/api/answer", content=chunks(), headers={"content-type": "application/json"})
        assert big.status_code == 413 and big.json()["detail"].startswith("request body over")
    import human_eval.server as server

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(server, "_connect", full)
    client = local_client(create_app(out))
    pid = next(iter(manifest["pairs"]))
    answer = client.post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "left"})
    assert answer.status_code == 503 and "nothing was stored" in answer.json()["detail"]


def test_a_pairs_file_with_a_pair_missing_a_field_is_refused_at_start(caption_batch):
    """Issue 47 (low): the server started, then every /api/next was a 500."""
    import json

    import pytest

    from human_eval.server import create_app
    from mils.errors import InputError

    batch, _ = caption_batch
    pairs = json.loads((batch / "pairs.json").read_text())
    del pairs[1]["left_text"]
    (batch / "pairs.json").write_text(json.dumps(pairs))
    with pytest.raises(InputError, match="pair 1 has no text for left_text"):
        create_app(batch)


def test_behind_a_proxy_that_rewrites_host_answers_from_the_named_origin_are_accepted(caption_batch):
    """Issue 47 (low): every answer was refused behind a reverse proxy that rewrites Host."""
    from human_eval.server import create_app
    from human_eval.web_safety import cross_site_write
    from tests.conftest import local_client

    proxied = {"content-type": "application/json", "host": "127.0.0.1:8765", "origin": "https://judge.example.org"}
    assert "another origin" in cross_site_write(proxied)
    assert cross_site_write(proxied, ("https://judge.example.org",)) is None
    assert "another origin" in cross_site_write({**proxied, "origin": "https://evil.example"}, ("https://judge.example.org",))
    batch, manifest = caption_batch
    pid = next(iter(manifest["pairs"]))
    headers = {"origin": "https://judge.example.org"}
    refused = local_client(create_app(batch)).post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "left"},
                                                   headers=headers)
    assert refused.status_code == 403
    accepted = local_client(create_app(batch, origins=("https://judge.example.org/",))).post(
        "/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "left"}, headers=headers)
    assert accepted.status_code != 403, accepted.text
