"""Visual question answering as a MILS task, in one file: what a plugin needs to add a task.

A sample is an image and a question; the candidates are answers; the scorer rates an answer against
the image (the offline profile's concept scorer, EfficientNet-lite0 + MiniLM, runs with no download);
the LLM is asked the question with the scored answers and writes new ones; an accuracy metric checks
the final answer against the references. Run it from the repository root:

    PYTHONPATH=. .venv/bin/mils run examples/visual_qa.yaml
    PYTHONPATH=. .venv/bin/mils --plugin examples.visual_qa vqa photo.jpg "What animal is this?" --answer cat

(``plugins: [examples.visual_qa]`` in the YAML, or ``--plugin``, imports this module before the task is
resolved; its spec's command is the ``vqa`` verb.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from evaluation.datasets import Dataset, EvalSample
from mils.config import CommandInput, Metric, TaskCommand, TaskSpec, register_metric, register_task
from mils.protocols import Sample
from mils.registry import register

PROMPT = """You need to answer a question about an image that you cannot see.
The question is: {question}

Here are some answers and their scores; a higher score means the answer fits the image better:

{descriptions}

Generate {requested_number} more short answers (one to four words) that you think will maximize the score.
Be concrete. Put each answer in a different line, with a counter at the beginning (e.g. "1. ...").
"""

ANSWERS = ("a cat", "a dog", "a horse", "a rocket", "a cup of coffee", "a camera", "a person", "an astronaut",
           "a motorcycle", "a clock", "a car", "a bird", "a flower", "a building", "a boat", "food")


def question_slot(sample: Sample) -> dict[str, str]:
    """The meta-prompt's ``{question}``: the sample's question (module-level: a Dask worker unpickles it)."""
    return {"question": sample.fields["question"]}


def answer_vocabulary(sample: Sample) -> Sequence[str]:
    """Every sample starts from the same short answers (no caption bank)."""
    return ANSWERS


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def answer_accuracy(prediction: str, references: Sequence[str]) -> float:
    """1 when the answer contains a reference answer as whole words ("a tabby cat" answers "cat"), else 0."""
    said = f" {_words(prediction)} "
    return float(any(f" {_words(r)} " in said for r in references if _words(r)))


def asked(inputs: Mapping[str, Any], configured: str) -> dict[str, Any]:
    """`mils vqa IMAGE QUESTION [--answer A]`: one image and its question as the run's dataset."""
    return {"kind": "visual_qa_asked", "args": {"image": inputs["image"], "question": inputs["question"],
                                                "answers": list(inputs["answer"] or [])}}


VQA = TaskCommand("visual question answering on an image (examples/visual_qa.py), as `mils run`",
                  (CommandInput("image", "the image"), CommandInput("question", "the question, quoted"),
                   CommandInput("--answer", "an accepted answer, for the accuracy (again for each)", many=True)),
                  asked)

register_metric(Metric("answer_accuracy", score=answer_accuracy))
register_task(TaskSpec(
    "visual_qa", "image", "vqa", "a fixed answer vocabulary (ANSWERS)", prompt=PROMPT, slots=question_slot,
    candidates=answer_vocabulary, bank=False, command=VQA,
    defaults={"metrics": ["answer_accuracy"], "loop": {"steps": 2, "keep": 5, "requested": 5, "max_words": 8}}))

QUESTIONS = {  # scikit-image's bundled photos, each with a question and its accepted answers
    "chelsea.png": ("What animal is in the picture?", ("cat", "tabby cat", "kitten")),
    "coffee.png": ("What is in the cup?", ("coffee", "cup of coffee", "espresso")),
    "rocket.jpg": ("What is on the launch pad?", ("rocket", "space rocket")),
    "horse.png": ("What animal is shown?", ("horse",)),
}


@register("dataset", "visual_qa_photos")
def visual_qa_photos() -> Dataset:
    """A tiny VQA split: scikit-image's photos, a question each (``meta``: the sample's ``fields``)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    rows = [EvalSample(Path(name).stem, folder / name, answers, meta={"question": question})
            for name, (question, answers) in QUESTIONS.items()]
    return Dataset("visual_qa_photos", rows)


@register("dataset", "visual_qa_asked")
def visual_qa_asked(image: Path, question: str, answers: Sequence[str] = ()) -> Dataset:
    """One image and a question given on the command line (``answers``: the accepted ones, if any)."""
    return Dataset("visual_qa_asked", [EvalSample(Path(image).stem, Path(image), tuple(answers),
                                                  meta={"question": question})], need_references=False)
