"""Issue 47, item 4: the media seal. Checking a seal writes nothing (a read-only or absent config
folder still reads results); a run that cannot seal writes media.json unsealed with a warning; a
short key (an empty file a full disk left) is never used as the HMAC key."""

from __future__ import annotations

import json
import stat

import pytest

from mils.protocols import Sample
from mils.storage.run_folder import KEY_BYTES, trusted_media_root, write_media_root


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    monkeypatch.setenv("MILS_CONFIG_DIR", str(folder))
    return folder


def _run(tmp_path, name="run"):
    media = tmp_path / "photos"
    media.mkdir(exist_ok=True)
    (media / "a.jpg").write_bytes(b"x")
    run = tmp_path / name
    run.mkdir()
    return run, [Sample("a", media / "a.jpg")]


def test_a_run_seals_and_the_seal_is_trusted(tmp_path, config_dir):
    run, samples = _run(tmp_path)
    write_media_root(run, samples)
    assert trusted_media_root(run) == ((tmp_path / "photos").resolve(), None)
    key = config_dir / "seal.key"
    assert len(key.read_bytes()) == KEY_BYTES and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in config_dir.iterdir()] == ["seal.key"]  # no staging file left


def test_checking_a_seal_writes_no_key(tmp_path, config_dir):
    run, samples = _run(tmp_path)
    (run / "media.json").write_text(json.dumps({"media_root": str(tmp_path / "photos"), "seal": "0" * 64}))
    root, why = trusted_media_root(run)
    assert root is None and "unsealed (no seal key" in why
    assert not config_dir.exists()  # reading results never creates the config folder


def test_an_unwritable_config_location_reads_and_writes_unsealed(tmp_path, monkeypatch, caplog):
    """A file where the config folder should be: unwritable even for root (a read-only mount acts alike)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MILS_CONFIG_DIR", str(blocker / "mils"))
    run, samples = _run(tmp_path)
    write_media_root(run, samples)  # no crash
    assert json.loads((run / "media.json").read_text())["seal"] == "" and "unsealed" in caplog.text
    root, why = trusted_media_root(run)
    assert root is None and "no seal key" in why


@pytest.mark.parametrize("short", [b"", b"abc", b"x" * (KEY_BYTES - 1)])
def test_a_short_key_is_never_used_and_is_replaced_when_sealing(tmp_path, config_dir, short):
    import hmac

    config_dir.mkdir()
    (config_dir / "seal.key").write_bytes(short)
    run, samples = _run(tmp_path)
    forged = hmac.new(short, f"{run.resolve()}\n{(tmp_path / 'photos').resolve()}".encode(), "sha256").hexdigest()
    (run / "media.json").write_text(json.dumps({"media_root": str((tmp_path / "photos").resolve()), "seal": forged}))
    assert trusted_media_root(run)[0] is None  # a seal made with the short key is not trusted
    assert (config_dir / "seal.key").read_bytes() == short  # checking did not touch it
    other, more = _run(tmp_path, "other")
    write_media_root(other, more)
    key = (config_dir / "seal.key").read_bytes()
    assert len(key) == KEY_BYTES and key != short
    assert trusted_media_root(other)[0] == (tmp_path / "photos").resolve()
