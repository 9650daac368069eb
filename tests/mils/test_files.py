"""A file a rerun trusts is whole or absent: a kill mid-write leaves no half file under its name."""

import pytest

from mils import files
from mils.components.bank import Bank, load_bank, save_bank


def test_an_interrupted_bank_write_leaves_no_bank_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "banks" / "generated-abc.txt"
    bank = Bank(tuple(f"caption {i}" for i in range(1000)), {"source": "test"})

    def killed(fd):
        raise KeyboardInterrupt  # the process stops between writing and renaming

    monkeypatch.setattr(files.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        save_bank(bank, path)
    assert not path.exists() and list(path.parent.iterdir()) == []  # a rerun generates it again
    monkeypatch.undo()
    save_bank(bank, path)
    assert load_bank(path).texts == bank.texts


def test_an_existing_file_is_replaced_whole(tmp_path, monkeypatch):
    path = files.write_atomic(tmp_path / "config.json", '{"old": true}')
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        files.write_atomic(path, '{"new": true, "longer": "x"}')
    assert path.read_text() == '{"old": true}' and len(list(tmp_path.iterdir())) == 1


def test_content_hash_is_the_sha256_prefix_every_key_used_before():
    from mils.files import content_hash

    assert content_hash("abc", 12) == content_hash(b"abc", 12) == "ba7816bf8f01"  # SHA-256("abc"), as the keys had it
    assert len(content_hash("abc", None)) == 64 and content_hash("abc") == content_hash("abc", None)[:16]
