import json

import pytest

from evaluation.chair import chair, mentioned_objects, singular
from evaluation.pope import load_instances


def test_mentioned_objects_use_synonyms_plurals_and_phrases():
    assert mentioned_objects("Two men ride bikes past a hot dog stand") == ["person", "bicycle", "hot dog"]
    assert mentioned_objects("A kitten on a sofa next to a teddy bear") == ["cat", "couch", "teddy bear"]
    assert mentioned_objects("a puppy and a dog") == ["dog"]  # each object once per caption
    assert mentioned_objects("a view of the sky") == []
    assert singular("knives") == "knife" and singular("puppies") == "puppy" and singular("bus") == "bus"


def test_chair_on_a_hand_made_example():
    truth = {"1": {"cat", "couch"}, "2": {"dog", "frisbee"}, "3": {"person", "pizza"}}
    captions = {
        "1": "A cat sleeping on a sofa",            # cat, couch: both true
        "2": "A dog catches a frisbee near a car",  # dog, frisbee true; car hallucinated
        "3": "A man eating pizza with a fork and a cup",  # person, pizza true; fork, cup hallucinated
    }
    result = chair(captions, truth)
    assert result.mentioned == 2 + 3 + 4
    assert result.chair_i == pytest.approx(3 / 9)
    assert result.chair_s == pytest.approx(2 / 3)
    assert result.hallucinated == {"2": ["car"], "3": ["fork", "cup"]}


def test_reference_captions_extend_the_ground_truth():
    result = chair({"1": "a dog near a car"}, {"1": {"dog"}}, references={"1": ["a dog next to a parked car"]})
    assert result.chair_i == 0.0 and result.chair_s == 0.0


def test_coco_instances_file(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "categories": [{"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [{"image_id": 1, "category_id": 17}, {"image_id": 1, "category_id": 18}],
    }))
    assert load_instances(path, by="id", with_empty=True) == {"1": {"cat", "dog"}, "2": set()}
    assert load_instances(path) == {"a.jpg": {"cat", "dog"}}  # POPE's view: nothing to ask about b.jpg
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_instances(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="no ground-truth"):
        chair({"9": "a cat"}, {"1": {"cat"}})
