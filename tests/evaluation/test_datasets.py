import json

import pytest
from PIL import Image

from evaluation import datasets
from mils.errors import InputError, MissingInputError
from tests.conftest import write_audio, write_video


def _image(path, color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)
    return path


def test_coco_karpathy_split_with_a_broken_and_a_missing_image(tmp_path, caplog):
    root = tmp_path / "coco"
    _image(root / "val2014" / "a.jpg")
    (root / "val2014" / "broken.jpg").write_bytes(b"not an image")
    split = {"images": [
        {"split": "test", "cocoid": 1, "filepath": "val2014", "filename": "a.jpg",
         "sentences": [{"raw": "A red square."}, {"raw": "red"}]},
        {"split": "test", "cocoid": 2, "filepath": "val2014", "filename": "broken.jpg", "sentences": [{"raw": "x"}]},
        {"split": "test", "cocoid": 3, "filepath": "val2014", "filename": "gone.jpg", "sentences": [{"raw": "y"}]},
        {"split": "train", "cocoid": 4, "filepath": "val2014", "filename": "a.jpg", "sentences": [{"raw": "z"}]},
    ]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(split))
    data = datasets.coco_karpathy(tmp_path / "dataset_coco.json", root)
    assert [s.id for s in data.samples] == ["1"]
    assert data.samples[0].references == ("A red square.", "red")
    skipped = dict(data.skipped)
    assert "unreadable image" in skipped["2"] and "broken.jpg" in skipped["2"]
    assert "missing file" in skipped["3"]
    assert "skipping 2" in caplog.text


def test_coco_captions_with_split_ids(tmp_path):
    for i in (1, 2, 3):
        _image(tmp_path / "img" / f"{i}.jpg")
    ann = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
           "annotations": [{"image_id": 1, "caption": "one"}, {"image_id": 2, "caption": "two"},
                           {"image_id": 2, "caption": "deux"}]}
    (tmp_path / "captions.json").write_text(json.dumps(ann))
    (tmp_path / "ids.txt").write_text("2\n3\n")
    data = datasets.coco_captions(tmp_path / "captions.json", tmp_path / "img", tmp_path / "ids.txt")
    assert [s.id for s in data.samples] == ["2"] and data.samples[0].references == ("two", "deux")
    assert data.skipped == [("3", "no non-empty reference")]
    with pytest.raises(ValueError, match="not in"):
        datasets.coco_captions(tmp_path / "captions.json", tmp_path / "img", [9])


def test_msrvtt(tmp_path):
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "video7010.mp4", n_frames=5)
    (tmp_path / "videos" / "video7011.mp4").write_bytes(b"")
    info = {"videos": [{"video_id": "video7010", "split": "test", "category": 3},
                       {"video_id": "video7011", "split": "test"}],
            "sentences": [{"video_id": "video7010", "caption": "a man sings"},
                          {"video_id": "video7011", "caption": "a car"}]}
    (tmp_path / "test.json").write_text(json.dumps(info))
    data = datasets.msrvtt(tmp_path / "test.json", tmp_path / "videos")
    assert [s.id for s in data.samples] == ["video7010"] and data.samples[0].meta["category"] == 3
    assert "empty file" in dict(data.skipped)["video7011"]
    # a file without per-video splits (another package's MSR_VTT.json) would run every video as test
    info["videos"].append({"video_id": "video1"})
    (tmp_path / "nosplit.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"1 videos carry no 'split' \(e.g. 'video1'\).*test_videodatainfo.json"):
        datasets.msrvtt(tmp_path / "nosplit.json", tmp_path / "videos")


def test_clotho_csv(tmp_path):
    (tmp_path / "audio").mkdir()
    write_audio(tmp_path / "audio" / "rain.wav")
    (tmp_path / "audio" / "corrupt.wav").write_bytes(b"RIFF....")
    (tmp_path / "eval.csv").write_text("file_name,caption_1,caption_2\nrain.wav,Rain falls.,Water drips.\n"
                                       "missing.wav,A bird,A song\ncorrupt.wav,x,y\n")
    data = datasets.clotho(tmp_path / "eval.csv", tmp_path / "audio")
    assert data.references() == {"rain.wav": ["Rain falls.", "Water drips."]}
    assert "missing.wav" in dict(data.skipped)
    assert "unreadable audio" in dict(data.skipped)["corrupt.wav"]
    (tmp_path / "bad.csv").write_text("name,text\na,b\n")
    with pytest.raises(ValueError, match="file_name"):
        datasets.clotho(tmp_path / "bad.csv", tmp_path / "audio")


def test_drawbench(tmp_path):
    (tmp_path / "db.csv").write_text('Prompts,Category\n"A red cube, on a blue sphere",Colors\n,Empty\nA cat,Animals\n')
    data = datasets.drawbench(tmp_path / "db.csv")
    assert [s.meta["prompt"] for s in data.samples] == ["A red cube, on a blue sphere", "A cat"]
    # the prompt is the sample's text (what text-to-image rewrites and scores its images against)
    assert data.samples[0].as_sample().media == "A red cube, on a blue sphere" and data.samples[0].meta["category"] == "Colors"


def test_style_pairs_is_every_content_with_every_style_and_names_an_unreadable_one(tmp_path):
    for name in ("c1.jpg", "c2.png"):
        _image(tmp_path / "content" / name)
    _image(tmp_path / "style.jpg")
    (tmp_path / "content" / "c3.jpg").write_bytes(b"not an image")
    data = datasets.style_pairs(tmp_path / "content", tmp_path / "style.jpg")
    assert [s.id for s in data.samples] == ["c1+style", "c2+style"]
    assert data.samples[0].as_sample().media == {"content": tmp_path / "content" / "c1.jpg", "style": tmp_path / "style.jpg"}
    assert dict(data.skipped)["c3+style"].startswith("content: unreadable image")
    with pytest.raises(MissingInputError, match="style image not found"):
        datasets.style_pairs(tmp_path / "content", tmp_path / "nope.jpg")


def test_prompts_given_in_a_config_are_samples_in_order():
    data = datasets.prompts(["a red cat", "  ", "two boats"])
    assert [(s.id, s.as_sample().media) for s in data.samples] == [("prompt000", "a red cat"), ("prompt002", "two boats")]
    with pytest.raises(InputError, match="every prompt given is empty"):
        datasets.prompts([""])


def test_media_folder_with_json_references_and_subsample(tmp_path):
    for name in ("a.jpg", "b.png", "c.jpg"):
        _image(tmp_path / "m" / name)
    (tmp_path / "m" / "notes.txt").write_text("ignored")
    (tmp_path / "refs.json").write_text(json.dumps({"a.jpg": ["an a"], "b.png": "a b", "c.jpg": []}))
    data = datasets.media_folder(tmp_path / "m", tmp_path / "refs.json")
    assert [s.id for s in data.samples] == ["a.jpg", "b.png"]
    assert data.skipped == [("c.jpg", "no non-empty reference")]
    sub = data.subsample(1, seed=0)
    assert len(sub.rows) == 1 and sub.rows == data.subsample(1, seed=0).rows
    assert data.subsample(None) is data


@pytest.mark.parametrize("loader, args, message", [
    (datasets.coco_karpathy, ("nope.json", "."), "Karpathy split file"),
    (datasets.msrvtt, ("nope.json", "."), "MSR-VTT annotation file"),
    (datasets.clotho, ("nope.csv", "."), "Clotho captions CSV"),
    (datasets.drawbench, ("nope.csv",), "DrawBench CSV"),
    (datasets.media_folder, ("no_such_dir",), "media folder"),
])
def test_missing_files_are_named(loader, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=message):
        loader(*args)


def test_corrupt_json_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        datasets.coco_karpathy(tmp_path / "bad.json", tmp_path)


def test_sample_benchmark_has_references_for_every_photo(tmp_path):
    from evaluation.datasets import sample_benchmark
    from evaluation.sample_set import SAMPLE_IMAGES

    data = sample_benchmark(tmp_path)
    assert len(data) == len(SAMPLE_IMAGES) and not data.skipped
    assert all(len(s.references) >= 3 for s in data.samples)


def _karpathy(tmp_path, n, broken=()):
    root = tmp_path / "coco"
    images = []
    for i in range(n):
        name = f"{i}.jpg"
        if i in broken:
            (root / "val2014").mkdir(parents=True, exist_ok=True)
            (root / "val2014" / name).write_bytes(b"truncated")
        else:
            _image(root / "val2014" / name, (i * 20 % 255, 0, 0))
        images.append({"split": "test", "cocoid": i, "filepath": "val2014", "filename": name,
                       "sentences": [{"raw": f"photo {i}"}]})
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": images}))
    return datasets.load_dataset("coco_karpathy", {"json_path": tmp_path / "dataset_coco.json", "images_root": root},
                                 limit=4, seed=3)


@pytest.mark.parametrize("sampler", ["numpy", "official"])
def test_the_subset_is_drawn_before_any_sample_is_checked(tmp_path, sampler):
    whole = _karpathy(tmp_path / "whole", 12)
    drawn = [s.id for s in whole.samples]
    undrawn = next(i for i in range(12) if str(i) not in drawn)
    data = _karpathy(tmp_path / "one_broken", 12, broken={undrawn})
    assert [s.id for s in data.samples] == drawn  # an unreadable image outside the subset changes nothing
    assert data.skipped == [] and data.counts() == {"original": 12, "drawn": 4, "skipped": 0}
    hit = _karpathy(tmp_path / "drawn_broken", 12, broken={int(drawn[1])})
    assert [s.id for s in hit.samples] == [d for d in drawn if d != drawn[1]]
    assert [sid for sid, _ in hit.skipped] == [drawn[1]]  # a drawn one is the run's failure
    assert hit.counts() == {"original": 12, "drawn": 4, "skipped": 1}


def test_a_file_name_that_is_not_utf8_is_skipped_and_named_not_a_crash(tmp_path, photo_dir):
    """Issue 47 (low): one such name stopped `mils caption` and `mils run` (every JSON write of its id failed)."""
    import json
    import os
    import shutil

    from evaluation.datasets import load_dataset

    photo = sorted(photo_dir.glob("*.jpg"))[0]
    shutil.copy(photo, tmp_path / "good.jpg")
    shutil.copy(photo, os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg"))  # Latin-1, not UTF-8
    data = load_dataset("folder", {"directory": str(tmp_path)})
    assert [s.id for s in data.samples] == ["good.jpg"]
    (shown, why), = data.skipped
    assert shown == "caf\\xe9.jpg" and "not valid UTF-8" in why
    json.dumps({"id": shown}, ensure_ascii=False).encode("utf-8")  # what failed/ writes: encodable now


def test_the_sample_dataset_says_where_it_writes_the_bundled_photos(tmp_path, caplog):
    """Issue 48, item 5: a mistyped folder silently became a 3-minute benchmark of the bundled photos."""
    import logging

    from evaluation.datasets import load_dataset

    with caplog.at_level(logging.WARNING):
        first = load_dataset("sample", {"directory": str(tmp_path / "my_photoz")})
    assert len(first.samples) == 8
    assert any(f"wrote 8 bundled photo(s) into {tmp_path / 'my_photoz'}" in r.getMessage() for r in caplog.records)
    caplog.clear()
    load_dataset("sample", {"directory": str(tmp_path / "my_photoz")})  # already there: nothing to say
    assert not [r for r in caplog.records if "bundled photo" in r.getMessage()]
