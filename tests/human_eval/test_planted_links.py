"""Issue 37, item 1: a folder from elsewhere may hold links planted where the suite writes (a fixed
temporary name, the file itself); every write lands in the folder and leaves the link's target alone."""

import json
import os
import stat

from tests.human_eval.test_export_ingest import _write_results
from tests.human_eval.test_viewer import run_dir  # noqa: F401  (the fixture)


def _plant(folder, name, tmp_path):
    target = tmp_path / f"victim-{name.strip('.')}"
    target.write_text("the user's file\n")
    (folder / name).symlink_to(target)
    return target


def test_the_viewer_cache_never_writes_through_a_planted_link(run_dir, tmp_path):  # noqa: F811
    from human_eval.viewer import RunIndex

    folder, _ = run_dir
    victims = [_plant(folder, name, tmp_path) for name in (".viewer_index.json.tmp", ".viewer_index.json")]
    RunIndex(folder).page()
    assert [v.read_text() for v in victims] == ["the user's file\n"] * 2
    cache = folder / ".viewer_index.json"
    assert not cache.is_symlink() and json.loads(cache.read_text())["files"]  # the cache itself was written


def test_invites_and_the_ingest_report_never_write_through_a_planted_link(caption_batch, answer, tmp_path):
    from cli.main import main
    from human_eval.invites import invite

    batch, manifest = caption_batch
    victims = [_plant(batch, name, tmp_path) for name in (".invites.json.tmp", "human_eval_report.json")]
    invite(batch, ["bob"])
    invites = batch / "invites.json"
    assert not invites.is_symlink() and stat.S_IMODE(invites.stat().st_mode) == 0o600  # tokens: owner only
    pid = next(iter(manifest["pairs"]))
    _write_results(tmp_path / "r.csv", [["h", "w1", "a", pid, answer(manifest, pid, "A")]])
    assert main(["human-eval", "ingest", "--results", str(tmp_path / "r.csv"), "--batch", str(batch),
                 "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 0
    assert [v.read_text() for v in victims] == ["the user's file\n"] * 2
    report = batch / "human_eval_report.json"
    assert not report.is_symlink() and "NaN" not in report.read_text() and json.loads(report.read_text())


def test_an_atomic_write_uses_a_fresh_name_and_keeps_the_umask(tmp_path):
    from mils.files import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


def test_a_batch_whose_upload_is_a_link_is_not_served_nor_exported_into(caption_batch, tmp_path):
    import pytest

    from human_eval.export import Entry, export_batch
    from human_eval.server import create_app
    from mils.errors import InputError

    batch, _ = caption_batch
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    (batch / "upload").rename(tmp_path / "old-upload")
    (batch / "upload").symlink_to(outside)
    with pytest.raises(InputError, match="upload is not a real folder"):
        create_app(batch)
    a = {"s": Entry("s", text="a cat", context_image=str(next((tmp_path / "old-upload").iterdir())))}
    b = {"s": Entry("s", text="a dog", context_image=a["s"].context_image)}
    with pytest.raises(InputError, match="upload is not a real folder"):
        export_batch(a, b, batch, axes=["faithfulness"], catch_fraction=0.0)
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]  # nothing copied through the link


def test_the_judging_page_never_opens_its_database_through_a_link(caption_batch, tmp_path):
    """Issue 47, item 1: SQLite follows links (it made databases elsewhere, and switched a copy of an
    MLflow store to WAL); the database and its side files are regular files or absent."""
    import shutil

    import pytest

    from human_eval.server import create_app
    from mils.errors import InputError

    for name in ("judgements.sqlite", "judgements.sqlite-wal", "judgements.sqlite-journal"):
        batch = tmp_path / name
        shutil.copytree(caption_batch[0], batch)
        elsewhere = tmp_path / f"{name}.elsewhere"
        elsewhere.write_bytes(b"")
        (batch / name).symlink_to(elsewhere)
        with pytest.raises(InputError, match="not a regular file"):
            create_app(batch)
        assert elsewhere.read_bytes() == b""
