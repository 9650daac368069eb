import json

import pytest

from evaluation.pope import (
    Question,
    build_questions,
    cooccurrence,
    load_instances,
    load_pope_file,
    negatives,
    parse_yes_no,
    pope_metrics,
)

IMAGES = {"a.jpg": ["person", "dog", "car"], "b.jpg": ["person", "car", "bicycle"], "c.jpg": ["person", "dog", "kite"],
          "d.jpg": ["cat", "umbrella", "person"], "e.jpg": ["car"]}


@pytest.fixture
def instances(tmp_path):
    """A hand-made COCO instances file (frequencies: person 4, car 3, dog 2, the rest 1)."""
    names = sorted({c for cs in IMAGES.values() for c in cs})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    ids = {n: i + 1 for i, n in enumerate(names)}
    images = [{"id": i + 1, "file_name": f} for i, f in enumerate(IMAGES)]
    anns = [{"id": len(images) * 10 + k, "image_id": i + 1, "category_id": ids[c]}
            for i, cs in enumerate(IMAGES.values()) for k, c in enumerate(cs)]
    anns.append({"id": 999, "image_id": 1, "category_id": ids["dog"]})  # a second dog: still one object class
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_sampling_rules_by_hand(instances):
    objects = load_instances(instances)
    assert objects["a.jpg"] == {"person", "dog", "car"}
    import random
    from collections import Counter

    frequency = Counter(c for cs in objects.values() for c in cs)
    categories = sorted(frequency)
    co = cooccurrence(objects)
    assert co["person"]["car"] == 2 and co["dog"]["kite"] == 1
    args = (categories, frequency, co, random.Random(0))
    # popular: the most frequent absent categories (ties by name)
    assert negatives(objects["a.jpg"], "popular", 2, *args) == ["bicycle", "cat"]
    assert negatives(objects["d.jpg"], "popular", 3, *args) == ["car", "dog", "bicycle"]
    # adversarial: most co-occurring with a.jpg's objects: bicycle (person 1 + car 1) and kite (person 1 + dog 1)
    assert negatives(objects["a.jpg"], "adversarial", 2, *args) == ["bicycle", "kite"]
    for setting in ("random", "popular", "adversarial"):
        for present in objects.values():
            assert not set(negatives(present, setting, 3, *args)) & present  # never a present object


def test_questions_follow_the_recipe(instances):
    objects = load_instances(instances)
    for setting in ("random", "popular", "adversarial"):
        questions = build_questions(objects, setting, images=10, per_image=3, seed=1)
        by_image = {}
        for q in questions:
            by_image.setdefault(q.image, []).append(q)
        assert set(by_image) == {"a.jpg", "b.jpg", "c.jpg", "d.jpg"}  # e.jpg has one object: not eligible
        for image, qs in by_image.items():
            yes = {q.object for q in qs if q.label == "yes"}
            no = {q.object for q in qs if q.label == "no"}
            assert yes == objects[image] and len(no) == 3 and not no & objects[image]
        assert build_questions(objects, setting, images=10, seed=1) == questions  # seeded
    with pytest.raises(ValueError, match="setting"):
        build_questions(objects, "hard")


def test_pope_files_load_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "coco_pope_adversarial.json"
    path.write_text('{"question_id": 1, "image": "x.jpg", "text": "Is there a dining table in the image?", "label": "no"}\n'
                    '{"question_id": 2, "image": "x.jpg", "text": "Is there an apple in the image?", "label": "yes"}\n')
    assert load_pope_file(path) == [Question("x.jpg", "dining table", "no", "adversarial"),
                                    Question("x.jpg", "apple", "yes", "adversarial")]
    path.write_text('{"image": "x.jpg", "text": "What is this?", "label": "no"}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_pope_file(path)


@pytest.mark.parametrize("answer,expected", [
    ("Yes.", "yes"), ("yes, there is a dog on the left", "yes"), ("No", "no"), ("No, there is not.", "no"),
    ("There is no dog in the image.", "no"), ("I don't see any dog.", "no"), ("There is a dog. It is not red.", "yes"),
    ("The image does not contain a dog.", "no"), ("", None), ("A dog.", None), ("**Yes**", "yes")])
def test_free_form_answers_parse(answer, expected):
    assert parse_yes_no(answer) == expected


def test_metrics_by_hand():
    qs = [Question("1", "a", "yes", "random"), Question("1", "b", "yes", "random"), Question("1", "c", "no", "random"),
          Question("1", "d", "no", "random"), Question("2", "e", "yes", "random"), Question("2", "f", "no", "random")]
    answers = ["Yes.", "No, there is not.", "No", "There is a dog.", "", "I don't see any."]
    m = pope_metrics(qs, answers, resamples=200)
    # parsed: yes no no yes unclear no -> right: 1, 3, 6; said yes: 1 and 4, of which 1 is right
    assert m["accuracy"]["value"] == pytest.approx(0.5)
    assert m["precision"]["value"] == pytest.approx(0.5) and m["recall"]["value"] == pytest.approx(1 / 3)
    assert m["f1"]["value"] == pytest.approx(0.4) and m["yes_ratio"]["value"] == pytest.approx(2 / 6)
    assert m["unclear"]["value"] == 1
    assert m["accuracy"]["ci_low"] <= 0.5 <= m["accuracy"]["ci_high"]
    with pytest.raises(ValueError, match="5 answers for 6 questions"):
        pope_metrics(qs, answers[:5])


def test_cli_builds_questions_and_scores_answers(instances, tmp_path, capsys):
    from cli.main import main

    assert main(["pope", "questions", "--instances", str(instances), "--out", str(tmp_path / "pope")]) == 0
    path = tmp_path / "pope" / "coco_pope_popular.json"
    questions = load_pope_file(path)
    assert len(questions) == 4 * 6 and questions[0].setting == "popular"
    answers = tmp_path / "answers.jsonl"  # a model that always says yes: recall 1, precision 0.5
    answers.write_text("".join(json.dumps({"question_id": n + 1, "text": "Yes, there is."}) + "\n"
                               for n in range(len(questions))))
    assert main(["pope", "score", "--questions", str(path), "--answers", str(answers)]) == 0
    table = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines() if len(line.split()) > 1}
    assert (table["yes_ratio"], table["recall"], table["precision"], table["accuracy"]) == ("100.0", "100.0", "50.0", "50.0")
    answers.write_text(json.dumps({"question_id": 1, "text": "yes"}) + "\n")
    assert main(["pope", "score", "--questions", str(path), "--answers", str(answers)]) == 2
    assert "no answer for 23 question ids" in capsys.readouterr().err


@pytest.mark.slow
def test_pope_run_asks_a_tiny_vlm_and_scores_it_with_chair_beside(tmp_path, photo_dir, capsys):
    from cli.main import main
    from tests.tiny_models import tiny_blip2

    cats = ["cat", "cup", "rocket", "person", "dog", "car", "bird"]
    present = {"chelsea.jpg": ["cat", "person", "dog"], "coffee.jpg": ["cup", "person", "car"],
               "rocket.jpg": ["rocket", "person", "bird"]}
    images = [{"id": i + 1, "file_name": f} for i, f in enumerate(present)]
    anns = [{"id": 100 * i + k, "image_id": i + 1, "category_id": cats.index(c) + 1}
            for i, cs in enumerate(present.values()) for k, c in enumerate(cs)]
    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps({"images": images, "annotations": anns,
                                     "categories": [{"id": i + 1, "name": n} for i, n in enumerate(cats)]}))
    assert main(["pope", "questions", "--instances", str(instances), "--setting", "popular", "--out",
                 str(tmp_path / "pope")]) == 0
    questions = tmp_path / "pope" / "coco_pope_popular.json"
    answers = tmp_path / "answers.jsonl"
    assert main(["pope", "run", "--questions", str(questions), "--images", str(photo_dir), "--captioner", "blip2",
                 "--model", str(tiny_blip2(tmp_path / "blip2")), "--device", "cpu", "--instances", str(instances),
                 "--batch-size", "4", "--out", str(answers)]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["question_id"] for r in rows] == list(range(1, 19))  # 3 images x (3 present + 3 absent)
    assert "yes_ratio" in out and "CHAIR on the same model's captions of these 3 images" in out
    # a random tiny model answers neither yes nor no: every answer is unclear, and said so
    assert "18 answers were neither yes nor no" in out
