"""Raters on the network: invite links, revocation, the admin-only export, no open non-loopback bind."""

import csv
import io
import stat

import pytest

from human_eval import invites
from human_eval.server import create_app, serve
from tests.browser import launch_chromium, served
from tests.conftest import local_client


def test_invite_links_name_the_rater_and_nothing_opens_without_one(caption_batch, capsys):
    from cli.main import main

    out, manifest = caption_batch
    assert main(["judge", "invite", str(out), "ann", "bob", "--url", "http://lab:8765"]) == 0
    printed = capsys.readouterr().out
    links = {line.split(":")[0].strip(): line.split("?invite=")[1].strip() for line in printed.splitlines()
             if "?invite=" in line}
    admin = printed.split("admin=")[1].split()[0]
    assert set(links) == {"ann", "bob"} and stat.S_IMODE((out / "invites.json").stat().st_mode) == 0o600
    client = local_client(create_app(out))
    for path in ("/", "/api/next", "/api/export"):
        assert client.get(path).status_code == 403, path
    assert client.get("/api/next", params={"invite": "forged"}).status_code == 403
    first = client.get("/api/next", params={"invite": links["ann"], "rater": "bob"}).json()
    assert first["rater"] == "ann"  # the link decides, not the name the client sends
    pid = first["pair"]["pair_id"]
    media = first["pair"]["context_url"]  # the photo being captioned, served from the batch
    assert media.startswith("/media/")
    assert client.get(media).status_code == 403 and client.get(media, params={"invite": links["ann"]}).is_success
    stored = client.post("/api/answer", json={"rater": "bob", "pair_id": pid, "choice": "left"},
                         headers={"X-Invite": links["ann"]})
    assert stored.json() == {"stored": True}
    assert client.post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "left"}).status_code == 403
    assert client.get("/api/export", params={"admin": links["ann"]}).status_code == 403  # a rater is not admin
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export", params={"admin": admin}).text)))
    assert [(r["WorkerId"], r["Input.pair_id"]) for r in rows] == [("ann", pid)]
    assert main(["judge", "revoke", str(out), "ann"]) == 0  # at once, same server
    assert client.get("/api/next", params={"invite": links["ann"]}).status_code == 403
    assert client.get("/api/next", params={"invite": links["bob"]}).json()["done"] == 0
    renewed = invites.invite(out, ["ann"])["ann"]  # re-invited: a new link, her answers kept
    assert renewed != links["ann"] and client.get("/api/next", params={"invite": renewed}).json()["done"] == 1


def test_a_network_bind_needs_invites(caption_batch):
    out, _ = caption_batch
    with pytest.raises(ValueError, match="create invite links first"):
        serve(out, host="0.0.0.0", port=0)


@pytest.mark.slow
def test_a_rater_answers_through_an_invite_link_in_the_browser(caption_batch):
    from playwright.sync_api import expect, sync_playwright

    out, manifest = caption_batch
    token = invites.invite(out, ["carol"])["carol"]
    with served(create_app(out)) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        assert page.goto(url).status == 403  # no link, no page
        page.goto(f"{url}/?invite={token}")
        expect(page.locator("#who")).to_have_text("carol")  # no name to type: the link says who
        expect(page.locator("#progress")).to_have_text(f"0 / {len(manifest['pairs'])} done")
        photo = page.locator("#context img")
        expect(photo).to_have_js_property("complete", True)
        assert photo.evaluate("im => im.naturalWidth") > 0  # media requests carry the link too
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_have_text(f"1 / {len(manifest['pairs'])} done")
        browser.close()
    admin = invites.read(out)["admin"]
    rows = list(csv.DictReader(io.StringIO(local_client(create_app(out)).get("/api/export",
                                                                          params={"admin": admin}).text)))
    assert [r["WorkerId"] for r in rows] == ["carol"]


def test_rater_names_are_trimmed_so_one_rater_has_one_token(caption_batch):
    from human_eval.invites import invite, read, revoke

    batch, _ = caption_batch
    first = invite(batch, ["  bob "])
    assert list(first) == ["bob"] and invite(batch, ["bob"]) == first
    revoke(batch, [" bob"])
    assert read(batch)["raters"]["bob"]["revoked"]
