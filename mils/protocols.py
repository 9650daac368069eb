"""The two roles of MILS: a Generator proposes texts, a Scorer rates them against a sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One test item: a stable id and its media (a path or an object). Its seeds derive from
    ``seed_id``: the id within its dataset, or for a file given by path (``mils caption``) the
    file's content, so where a file happens to sit never changes a result."""

    id: str
    media: Any
    content: str | None = None  # the media's content hash, when the id is only where it sits
    fields: Mapping[str, str] = field(default_factory=dict, compare=False)  # its texts beside the media (a question)

    @property
    def seed_id(self) -> str:
        return self.content or self.id

    @classmethod
    def from_path(cls, path: str | Path) -> "Sample":
        from mils.files import file_hash

        path = Path(path)
        return cls(id=str(path), media=path, content=file_hash(path) if path.is_file() else None)


@runtime_checkable
class Generator(Protocol):
    """Turns a batch of prompts into a batch of replies, one per prompt: each a :class:`Reply`
    (the text with its token usage and whether the token limit cut it), or a plain ``str`` (a
    whole reply of unknown usage).

    ``seeds[i]`` is the only source of randomness for reply ``i``: a reply must not depend on
    which other prompts share the batch. A generator that several threads may call at once sets
    ``concurrent = True`` (:class:`ConcurrentGenerator`): the ``async`` schedule needs it.
    """

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]: ...


Guide = Callable[[Sequence[str]], Sequence[float]]  # a sample's scores of partial lines, larger is better


@runtime_checkable
class GuidedGenerator(Generator, Protocol):
    """A generator whose decoding a scorer can steer token by token (an in-process backend): at every token
    the ``width`` likeliest next tokens are scored by the prompt's guide (the line being written, each
    continuation) and one is drawn from their log-probabilities plus ``weight`` x the standardised scores."""

    def generate_guided(self, prompts: Sequence[str], seeds: Sequence[int], guides: Sequence[Guide],
                        width: int, weight: float) -> list[str]: ...


@runtime_checkable
class ConcurrentGenerator(Generator, Protocol):
    """A generator that takes calls from several threads at once (vLLM's server client)."""

    concurrent: bool


@runtime_checkable
class Closable(Protocol):
    """A component holding a process or a server that should stop when the run ends."""

    def close(self) -> None: ...


@runtime_checkable
class Rendering(Protocol):
    """A scorer that makes images to score (text-to-image renders, style edits): the cost ledger
    counts them."""

    images_made: int


@runtime_checkable
class ImageMaker(Rendering, Protocol):
    """A rendering scorer that gives back the image a text became: the image tasks write out each
    step's best one."""

    def image_of(self, sample: Sample, text: str) -> Any:
        """The image ``text`` became for ``sample`` (a PIL image; cached, so nothing is made again)."""


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one reply: what the cost ledger counts."""

    prompt: int
    generated: int
    cached: bool = False  # served by the response cache: nothing was paid for it
    reasoning: int = 0  # of ``generated``: a reasoning model's thinking, removed before parsing


class Reply(str):
    """One reply as the LLM wrote it, with its token ``usage`` (None when the generator cannot
    count) and whether the token limit ``cut`` it (its last line is then half-written)."""

    usage: TokenUsage | None
    cut: bool

    def __new__(cls, text: str, usage: TokenUsage | None = None, cut: bool = False) -> "Reply":
        reply = super().__new__(cls, text)
        reply.usage, reply.cut = usage, cut
        return reply


def usage_of(reply: str) -> TokenUsage | None:
    return reply.usage if isinstance(reply, Reply) else None


def whole_lines(reply: str) -> str:
    """The reply without the half-written last line of a reply the token limit cut."""
    if not (isinstance(reply, Reply) and reply.cut):
        return str(reply)
    return reply.rsplit("\n", 1)[0] if "\n" in reply else ""


@dataclass(frozen=True)
class Workload:
    """What a run asks of its LLM, for a backend that sizes its memory up front (vLLM): the
    meta-prompt with no candidates in it (``frame``), how many candidates it shows (``lines``) of
    at most ``words`` words each (None: no cap, a line can be a whole reply), and how many prompts
    are in flight at once."""

    frame: str
    lines: int
    words: int | None
    in_flight: int


@runtime_checkable
class Scorer(Protocol):
    """A two-tower scorer: samples and texts are embedded separately, then compared.

    Splitting the towers is what lets the initial bank be embedded once per (scorer, bank) and
    each sample once per run; bank scoring is then a matrix product.
    """

    higher_is_better: bool

    def fingerprint(self) -> str:
        """A string that changes whenever text embeddings would change (used in cache keys)."""
        ...

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        """[n_samples, dim] float32 embeddings."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """[n_texts, dim] float32 embeddings."""
        ...

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """[n_samples, n_texts] scores."""
        ...


@runtime_checkable
class CandidateScorer(Protocol):
    """A scorer whose text side depends on the sample (an edit applied to the sample's image, a
    prompt rendered and judged against the sample's prompt). Returns one array per sample:
    shape [n] or [n, k] for k objectives, which are ranked by their sum and all shown in the prompt.
    """

    higher_is_better: bool

    def score(self, samples: Sequence[Sample], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]: ...
