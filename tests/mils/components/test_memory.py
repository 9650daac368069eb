"""A caption memory built from corpora of the forms users have (CC3M .tsv, COCO .json, .txt, .csv)."""

import json

import pytest

from mils.components.bank import load_bank
from mils.components.memory import build_memory, read_corpus
from mils.errors import InputError, MissingInputError


@pytest.fixture
def corpora(tmp_path):
    (tmp_path / "cc3m.tsv").write_text("a dog runs on the beach\thttp://x/1.jpg\nA red bus in the city\thttp://x/2.jpg\n")
    (tmp_path / "coco.json").write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "A red bus in the city"},
                                                                     {"image_id": 2, "caption": "two cats on a sofa"}]}))
    (tmp_path / "ss1m.json").write_text(json.dumps(["a kite in the sky", ""]))
    (tmp_path / "more.txt").write_text("a boat on a lake\n\n")
    (tmp_path / "table.csv").write_text("id,caption\n1,a man with a hat\n")
    return tmp_path


def test_a_memory_gathers_every_corpus_without_blanks_or_duplicates(corpora, tmp_path):
    names = ["cc3m.tsv", "coco.json", "ss1m.json", "more.txt", "table.csv"]
    memory = build_memory([corpora / n for n in names])
    assert memory.texts == ("a dog runs on the beach", "A red bus in the city", "two cats on a sofa", "a kite in the sky",
                            "a boat on a lake", "a man with a hat")  # the bus once: CC3M's spelling, read first
    assert memory.provenance["corpora"][str(corpora / "coco.json")] == 2
    assert len(build_memory([corpora / n for n in names], size=3, seed=1)) == 3


def test_mils_memory_writes_a_bank_file_a_run_reads(corpora, tmp_path, capsys):
    from cli.main import main

    out = tmp_path / "memory" / "captions.txt"
    assert main(["memory", str(corpora / "cc3m.tsv"), str(corpora / "more.txt"), "--out", str(out)]) == 0
    assert "3 captions from 2 corpus file(s)" in capsys.readouterr().out
    bank = load_bank(out)
    assert bank.texts == ("a dog runs on the beach", "A red bus in the city", "a boat on a lake")
    assert bank.provenance["source"] == str(out) and bank.provenance["captions"] == 3


@pytest.mark.parametrize("name, text, error", [
    ("bad.json", "{nope", "is not valid JSON"),
    ("dict.json", json.dumps({"images": []}), "COCO's"),
    ("ids.json", json.dumps([1, 2]), "every entry is a caption text"),
    ("cols.csv", "id,text\n1,a cat\n", "needs a 'caption' column"),
])
def test_a_corpus_it_cannot_read_is_named(tmp_path, name, text, error):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=f"{name}.*{error}|{error}"):
        read_corpus(tmp_path / name)
    with pytest.raises(MissingInputError, match="caption corpus not found"):
        read_corpus(tmp_path / "absent.tsv")
