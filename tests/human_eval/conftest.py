import json

import pytest

from human_eval.export import Entry, export_batch


@pytest.fixture
def caption_batch(tmp_path, photo_dir):
    """Baseline vs MILS captions for 6 'samples' (3 photos, reused), one axis, with catch trials."""
    photos = sorted(photo_dir.glob("*.jpg"))
    ids = [f"s{i}" for i in range(6)]
    a = {i: Entry(i, text=f"a photo of thing {n}", context_image=str(photos[n % 3])) for n, i in enumerate(ids)}
    b = {i: Entry(i, text=f"a detailed photo of object {n}", context_image=str(photos[n % 3]), category=f"c{n % 2}")
         for n, i in enumerate(ids)}
    out = tmp_path / "batch"
    manifest = export_batch(a, b, out, axes=["faithfulness"], seed=1, catch_fraction=0.34, names=("base", "mils"))
    return out, manifest


def answer_for(manifest, pid, system):
    """The left/right click that picks ``system`` (A or B) on pair ``pid``."""
    return "left" if manifest["pairs"][pid]["left"] == system else "right"


@pytest.fixture
def answer():
    return answer_for


def read_key(batch):
    return json.loads((batch / "key.json").read_text())
