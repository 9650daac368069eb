import json
import re

import numpy as np
import pytest

from mils.components.bank import (
    Bank,
    bank_cache_file,
    bank_embeddings,
    generate_bank,
    load_bank,
    save_bank,
    template_bank,
)
from tests.conftest import NO_RELEASE, RELEASE
from tests.fakes import FakeGenerator


def test_load_bank_strips_and_dedups(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_text("Image with a cat \n\nimage with a cat.\nA dog\n")
    bank = load_bank(path)
    assert bank.texts == ("Image with a cat", "A dog")
    assert bank.provenance["lines"] == 4


@pytest.mark.parametrize("content, message", [("\n \n", "no non-empty lines"), (b"\xff\xfe\x00bad", "not UTF-8")])
def test_unusable_bank_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*{message}"):
        load_bank(path)


def test_missing_bank_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_bank(tmp_path / "nope.txt")


def test_provenance_round_trips(tmp_path):
    bank = Bank(("a", "b"), {"source": "generated", "seed": 3, "generator": "m"})
    path = save_bank(bank, tmp_path / "out" / "bank.txt")
    loaded = load_bank(path)
    assert loaded.texts == bank.texts
    assert loaded.provenance["seed"] == 3 and loaded.provenance["generator"] == "m"
    assert json.loads((tmp_path / "out" / "bank.txt.provenance.json").read_text())["source"] == "generated"


def test_template_bank_and_subsample():
    bank = template_bank(["cat", "dog", "cat"], ["a photo of a {}.", "a {}"])
    assert bank.texts == ("a photo of a cat.", "a cat", "a photo of a dog.", "a dog")
    sub = bank.subsample(2, seed=0)
    assert len(sub) == 2 and set(sub.texts) <= set(bank.texts)
    assert sub.texts == bank.subsample(2, seed=0).texts
    assert sub.provenance["subsample"] == 2


def test_bank_is_embedded_once_and_cached_on_disk(tmp_path, fake_scorer, fake_bank):
    bank = Bank(tuple(fake_bank))
    first = bank_embeddings(fake_scorer, bank, bank_cache_file(fake_scorer, bank, tmp_path), chunk=64)
    assert len(fake_scorer.texts_embedded) == len(bank)
    second = bank_embeddings(fake_scorer, bank, bank_cache_file(fake_scorer, bank, tmp_path))
    assert len(fake_scorer.texts_embedded) == len(bank)  # served from the cache
    np.testing.assert_array_equal(first, second)
    # a different bank (content hash) is a different cache entry
    other = bank.subsample(10, seed=1)
    bank_embeddings(fake_scorer, other, bank_cache_file(fake_scorer, other, tmp_path))
    assert len(fake_scorer.texts_embedded) == len(bank) + 10
    assert len(list(tmp_path.glob("bank-*.npy"))) == 2


def test_generate_bank_with_the_paper_recipe(fake_generator):
    bank = generate_bank(fake_generator, ["cat", "dog", "boat"], per_class=3, seed=0, batch_size=2, generator_name="fake")
    assert len(bank) == 9  # 3 per class, the rest of each reply cut; the fake's lines do not repeat here
    # each class's captions come from its own seed: the batching does not change the bank
    assert generate_bank(FakeGenerator(), ["cat", "dog", "boat"], per_class=3, seed=0, batch_size=1).texts == bank.texts
    assert bank.provenance["generator"] == "fake" and bank.provenance["per_class"] == 3
    assert "{class_name}" in bank.provenance["prompt"]
    assert fake_generator.batches == [2, 1]


@pytest.mark.skipif(not RELEASE.is_dir(), reason=NO_RELEASE)
def test_mils_release_bank_loads():
    bank = load_bank(RELEASE / "image_descriptions_per_class.txt")
    assert 28_000 < len(bank) <= 28_379


def test_audio_bank_recipe_from_audioset_labels(tmp_path, fake_generator):
    from mils.components.bank import AUDIO_BANK_PROMPT, read_labels

    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text('index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/05zppz,"Male speech, man speaking"\n')
    names = read_labels(labels)
    assert names == ["Speech", "Male speech, man speaking"]
    bank = generate_bank(fake_generator, names, per_class=2, seed=1, prompt=AUDIO_BANK_PROMPT)
    assert bank.provenance["prompt"] == AUDIO_BANK_PROMPT and len(bank) == 4
    (tmp_path / "bad.csv").write_text("index,name\n0,x\n")
    with pytest.raises(ValueError, match="display_name"):
        read_labels(tmp_path / "bad.csv")
