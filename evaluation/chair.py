"""CHAIR object hallucination for COCO captions (Rohrbach et al., 2018).

Mentioned objects are found by matching (singularised) caption words and two-word phrases to
the 80 COCO categories and their synonyms; an object is hallucinated when it is not among the
image's ground-truth objects (COCO instance annotations, optionally plus objects named in its
reference captions, as the original does).

    CHAIR-i = hallucinated objects / mentioned objects   (each object counted once per caption)
    CHAIR-s = captions with a hallucinated object / captions
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from mils.errors import InputError

# COCO category -> extra words that name it (the category name itself always counts).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("man", "woman", "boy", "girl", "child", "kid", "people", "person", "guy", "lady", "player",
               "baby", "adult", "men", "women", "skier", "surfer", "skateboarder", "rider", "worker",
               "teenager", "toddler", "gentleman", "officer", "chef", "biker", "astronaut", "photographer"),
    "bicycle": ("bike", "cycle"), "car": ("taxi", "suv", "sedan"), "motorcycle": ("motorbike", "scooter", "moped"),
    "airplane": ("plane", "jet", "aircraft", "airliner"), "bus": ("trolley",), "train": ("locomotive", "tram"),
    "truck": ("pickup", "lorry"), "boat": ("ship", "sailboat", "kayak", "canoe", "yacht", "ferry"),
    "traffic light": ("stoplight", "traffic signal"), "fire hydrant": ("hydrant",), "stop sign": (),
    "parking meter": ("meter",), "bench": (), "bird": ("pigeon", "seagull", "duck", "parrot", "gull", "goose"),
    "cat": ("kitten", "kitty"), "dog": ("puppy", "pup"), "horse": ("pony", "foal"), "sheep": ("lamb", "ram"),
    "cow": ("cattle", "calf", "bull", "ox"), "elephant": (), "bear": (), "zebra": (), "giraffe": (),
    "backpack": ("knapsack",), "umbrella": ("parasol",), "handbag": ("purse", "bag"), "tie": ("necktie",),
    "suitcase": ("luggage", "suitcases"), "frisbee": (), "skis": ("ski",), "snowboard": (),
    "sports ball": ("ball", "football", "soccer ball", "basketball", "baseball", "tennis ball"),
    "kite": (), "baseball bat": ("bat",), "baseball glove": ("mitt", "glove"), "skateboard": (),
    "surfboard": ("board",), "tennis racket": ("racket", "racquet"), "bottle": (), "wine glass": (),
    "cup": ("mug",), "fork": (), "knife": (), "spoon": (), "bowl": (), "banana": (), "apple": (),
    "sandwich": ("burger", "sub"), "orange": (), "broccoli": (), "carrot": (), "hot dog": (), "pizza": (),
    "donut": ("doughnut",), "cake": ("cupcake",), "chair": ("stool",), "couch": ("sofa",),
    "potted plant": ("houseplant", "plant"), "bed": (), "dining table": ("table", "desk"), "toilet": (),
    "tv": ("television", "monitor"), "laptop": ("computer", "notebook"), "mouse": (), "remote": ("controller",),
    "keyboard": (), "cell phone": ("phone", "cellphone", "smartphone"), "microwave": (), "oven": ("stove",),
    "toaster": (), "sink": (), "refrigerator": ("fridge",), "book": ("novel",), "clock": (), "vase": (),
    "scissors": (), "teddy bear": ("teddybear",), "hair drier": ("hairdryer", "hair dryer", "blow dryer"),
    "toothbrush": (),
}
# Phrases whose head word would otherwise match a different object.
_NOT_OBJECTS = {"hot dog": "hot dog", "teddy bear": "teddy bear", "baby bird": "bird", "toilet seat": "toilet",
                "bird house": None, "dog house": None}
_IRREGULAR = {"men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
              "geese": "goose", "knives": "knife", "teeth": "tooth", "feet": "foot", "calves": "calf",
              "skis": "skis", "scissors": "scissors", "glasses": "glass", "buses": "bus", "sandwiches": "sandwich",
              "benches": "bench", "boxes": "box", "couches": "couch", "dishes": "dish", "suitcases": "suitcase",
              "giraffes": "giraffe", "oranges": "orange", "bus": "bus", "grass": "grass", "bass": "bass"}


def singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def _lexicon() -> dict[str, str | None]:
    lexicon: dict[str, str | None] = {}
    for category, words in SYNONYMS.items():
        for phrase in (category, *words):
            lexicon[" ".join(singular(w) for w in phrase.split())] = category
    lexicon.update({" ".join(singular(w) for w in k.split()): v for k, v in _NOT_OBJECTS.items()})
    return lexicon


LEXICON = _lexicon()


def mentioned_objects(caption: str) -> list[str]:
    """COCO categories named in ``caption``, in order, each once (two-word phrases win)."""
    words = [singular(w) for w in re.findall(r"[a-z]+", caption.lower())]
    found: list[str] = []
    i = 0
    while i < len(words):
        pair = " ".join(words[i : i + 2]) if i + 1 < len(words) else None
        if pair in LEXICON:
            category, i = LEXICON[pair], i + 2
        elif words[i] in LEXICON:
            category, i = LEXICON[words[i]], i + 1
        else:
            i += 1
            continue
        if category and category not in found:
            found.append(category)
    return found


@dataclass(frozen=True)
class ChairResult:
    chair_i: float
    chair_s: float
    mentioned: int
    hallucinated: dict[str, list[str]]  # sample id -> hallucinated objects


def chair(
    captions: Mapping[str, str],
    ground_truth: Mapping[str, set[str]],
    references: Mapping[str, Sequence[str]] | None = None,
) -> ChairResult:
    """CHAIR-i and CHAIR-s of ``captions`` (id -> caption) against ground-truth objects per id."""
    missing = sorted(set(captions) - set(ground_truth))
    if missing:
        raise InputError(f"{len(missing)} captions have no ground-truth objects, e.g. {missing[:5]}")
    mentioned = hallucinated_total = 0
    hallucinated: dict[str, list[str]] = {}
    for sample_id, caption in captions.items():
        truth = set(ground_truth[sample_id])
        for ref in (references or {}).get(sample_id, []):
            truth.update(mentioned_objects(ref))
        objects = mentioned_objects(caption)
        wrong = [o for o in objects if o not in truth]
        mentioned += len(objects)
        hallucinated_total += len(wrong)
        if wrong:
            hallucinated[sample_id] = wrong
    n = len(captions)
    return ChairResult(
        chair_i=hallucinated_total / mentioned if mentioned else 0.0,
        chair_s=len(hallucinated) / n if n else float("nan"),
        mentioned=mentioned,
        hallucinated=hallucinated,
    )
