"""Turning an LLM reply into clean candidate texts.

Small instruction-tuned models answer the MILS prompt messily: numbered or bulleted lists in
several styles, markdown bold, quoted candidates followed by an explanation, echoed
``0.167: caption`` score prefixes, ``A:`` labels, prose preambles. This module keeps the
candidates and drops the rest; it never raises on a reply, it returns what it could use.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

_MARKER = re.compile(
    r"""^\s*(?:
        \**\(?\#?\d{1,3}\s*[.):\]]\**   # 1.  1)  (1)  **1.**  1:  #1.
      | [-*\u2022\u2013>]+(?=\s)        # - * bullet en-dash >
      | \#{1,6}(?=\s)                   # markdown heading
    )\s*""",
    re.X,
)
_SCORE_PREFIX = re.compile(
    r"^(?:the\s+|score\s*)?\(?\s*(?:\d*\.\d+|[01])\s*\)?\s*[:=\-\u2013|]\s*", re.I
)
_LABEL = re.compile(
    r"^(?:(?:[A-Z]|Q|A\d*|Description\s*\d*|Caption\s*\d*|(?:New|Original|Modified|Improved) description\s*\d*|Score)"
    r"\s*:|\[[A-H]\])\s*",
    re.I,
)
_QUOTED = re.compile(r"""^["\u201c'](.+?)["\u201d'](?=\s|$|[.,;:!?)\-\u2013])""")
# what follows a caption and is not part of it: "(explanation", "[0.42]", "// note", "score: 0.4", and a
# dash only when an explanation follows it ("A man - wearing a hat - rides" is one caption)
_TRAILING = re.compile(
    r"\s+(?:\(|\[(?=\s*(?:\d|score))|//|\bscore\b\s*[:=]|[-\u2013\u2014]\s+(?=(?:this|that|it|which|captures?|describes?"
    r"|emphasi[sz]es|highlights?|focus(?:es)?|adds?|conveys?|shows?|maximi[sz]es?|score)\b)).*$", re.I)
_FRAMING = re.compile(  # "Your image description is a photo of ..." -> "a photo of ..."
    r"^(?:your|the|this|my|a) (?:new |final |improved )?(?:image |video |audio )?(?:description|caption|image)"
    r"\s+(?:is|would be|could be)\s*:?\s+(?=\w)", re.I)
_PREAMBLE = re.compile(  # whole words: "Notebook on a desk" and "Surely ..." are captions
    r"^(?:here\s+(?:are|is)|here's|sure|certainly|okay|ok|i|i'm|these|note|below|the following"
    r"|additional|new descriptions|based on|to maximize)\b",
    re.I,
)
_SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|<pad>")
# junk that small models write in place of candidates (dropped whole, never cleaned into one)
_BRACKETED_SCORE = re.compile(r"^\s*[\[(]\s*(?:\d*\.\d+|[01])\s*[:,]")  # [0.286: Photo taken ...]
_LETTER_LABEL = re.compile(r"^\s*\**[A-Z][.)]\s")  # lettered options: "A. Black and white photo", "J. Higher"
_SCORE_LINE = re.compile(r"^\s*\**score\**\s*[:=]", re.I)  # "- Score: 0.5 because ...": about a score
_META = re.compile(
    r"\bscores?\b\s*(?:is|was|of|=|:|\d)|\bwhich means\b|^high(?:er)? scores?\b|\bhigher scores?\b|\bthe (?:image |audio |video )?"
    r"descriptions? (?:is|are|above|below)\b|\bcharacteri[sz]es? the\b|\bmaximi[sz]e (?:the|your|its) scores?\b"
    r"|\bdescriptions? and (?:their )?scores\b|^(?:you|we|let's|let me|in this)\b|\bthe scores?\b(?! ?board)"
    r"|\b(?:previous|following|above|given) (?:one|descriptions?|examples?)\b|^your (?:\w+ )?descriptions? (?:should|must)\b"
    # talk to the user about their picture or text: "... a more detailed description of your image", praise
    r"|\byour (?:\w+ )?(?:image|photo|picture|video|audio|clip|description|caption|text)s?\b|\bhere'?s\b"
    r"|\b(?:great|good|excellent|perfect|wonderful) (?:example|job|description|caption)\b|\bthis is a description\b"
    # judgements of a description instead of one: "A plate of food is a high-quality image description"
    r"|^this description\b|\bis an? (?:[\w-]+ )?(?:image |photo |video |audio )?(?:description|caption)\b",
    re.I,
)
# run-on prose: three sentences or more, or two in over 30 words (a caption is a phrase or a sentence)
_SENTENCE_BREAK = re.compile(r"[.!?]\s+(?=[A-Z\"\u201c])")
_DANGLING = {"a", "an", "the", "is", "are", "was", "of", "with", "and", "or", "to", "in", "on", "at", "that", "which",
             "by", "for", "from", "as", "its", "their", "this", "these", "your", "my", "our", "his", "her", "but", "so",
             "than", "into", "onto", "over", "under", "behind", "between", "near", "about", "through", "while", "where",
             "who", "whose", "when", "such", "very", "like", "wearing", "holding", "featuring", "showing", "including",
             "carrying", "using"}  # a line ending in one is cut off: "A person wearing"
# a title with a number ("Titanic - 7", "Scene 2 - 3"), an aside in brackets ("[i.e. close-up of ...",
# "(Note: ...)"): never candidates
_TITLE = re.compile(r"^[\w'&.,: ]{1,40}\s[-\u2013\u2014]\s*\d+\s*$")
_ASIDE = re.compile(r"^\s*(?:\(|\[(?![^\]]*\]\s*$))")  # "(" always; "[" unless the line is one bracketed caption
_WS = re.compile(r"\s+")
_EDGE_PUNCT = " \t\"'\u201c\u201d`*_.,;:!?"


def normalise(text: str) -> str:
    """The dedup key: case, inner whitespace and edge punctuation/quotes do not matter."""
    return _WS.sub(" ", text).strip(_EDGE_PUNCT).lower()


def _clean_line(line: str) -> tuple[str, bool]:
    """Return (candidate text, had_list_marker)."""
    line = _SPECIAL_TOKENS.sub("", line).strip()
    had_marker = False
    while True:  # markers and labels can be stacked: "1. **A:** 0.15: text"
        before = line
        if line.startswith("[") and line.endswith("]"):  # "[4. a palace with a bell tower]"
            line = line[1:-1].strip()
        line = _SCORE_PREFIX.sub("", line)
        match = _MARKER.match(line)
        if match and match.end() < len(line):
            had_marker = True
            line = line[match.end():]
        line = line.strip().strip("*_").strip()
        line = _FRAMING.sub("", _LABEL.sub("", _SCORE_PREFIX.sub("", line)))
        if line == before:
            break
    quoted = _QUOTED.match(line)
    if quoted:  # '"1. A photo of a dog."': what the quotes hold is cleaned the same way
        line = _clean_line(quoted.group(1))[0] if quoted.group(1) != line else quoted.group(1)
    else:
        line = _TRAILING.sub("", line)
    return _WS.sub(" ", line).strip(_EDGE_PUNCT).strip(), had_marker


def _usable(text: str, max_words: int | None) -> bool:
    if len(text) < 3 or not re.search(r"[A-Za-z]{2}", text) or len(text.split()) < 2:  # "Photo": no description
        return False
    if _TITLE.match(text):
        return False
    if text.endswith(":") or _PREAMBLE.match(text) or _META.search(text):
        return False
    if text.split()[-1].lower() in _DANGLING:  # a fragment: "The image description is"
        return False
    breaks = len(_SENTENCE_BREAK.findall(text))
    if breaks >= 2 or (breaks == 1 and len(text.split()) > 30):
        return False
    return max_words is None or len(text.split()) <= max_words


def _junk(raw: str) -> bool:
    """Lines that are not candidates even after cleaning: bracketed scored echoes, lettered options
    and lines labelled as a score."""
    line = _MARKER.sub("", raw, count=1) if _MARKER.match(raw) and not _LETTER_LABEL.match(raw) else raw
    introduces = line.rstrip().rstrip("*").endswith(":")  # "Here is a more detailed description of your image:"
    return bool(_BRACKETED_SCORE.match(line) or _LETTER_LABEL.match(line) or _SCORE_LINE.match(line) or introduces
                or _ASIDE.match(line))


def prompt_lines(prompt: str) -> set[str]:
    """The prompt's instruction lines, normalised: a reply line equal to one of them is an echo.
    (Its scored examples are left out: they are the kept candidates, which the loop drops anyway.)"""
    return {normalise(_clean_line(line)[0]) for line in prompt.splitlines() if not _SCORE_PREFIX.match(line)} - {""}


def parse_candidates(
    reply: str, exclude: Iterable[str] = (), max_words: int | None = 77, prompt: str | None = None,
    key: Callable[[str], str] = normalise,
) -> list[str]:
    """Candidates from ``reply``, in order, deduplicated, minus anything in ``exclude``.

    List-marked lines are preferred; a reply with no list markers falls back to its plain lines.
    ``key`` decides which texts are the same (:func:`dedup_key`). Lines over ``max_words`` words
    (run-on prose; None: no limit) are dropped, and so are echoes of the
    ``prompt``'s lines, bracketed scored lines, lettered options, sentences about the scores or
    the task, and fragments ending in a function word.
    """
    marked: list[str] = []
    plain: list[str] = []
    for raw in reply.splitlines():
        if _junk(raw):
            continue
        text, had_marker = _clean_line(raw)
        if _usable(text, max_words):
            (marked if had_marker else plain).append(text)
    echoes = prompt_lines(prompt) if prompt else set()
    seen = {key(t) for t in exclude}
    out: list[str] = []
    for text in marked or plain:
        k = key(text)
        if k and k not in seen and normalise(text) not in echoes:
            seen.add(k)
            out.append(text)
    return out


def parse_official(reply: str) -> list[str]:
    """The official MILS parser (``strip_line_counters`` in facebookresearch/MILS): a line whose
    first five characters hold ". " is a candidate; the text after the first period and one
    space, cut at the first "(", stripped, without "!" and the special tokens; exact duplicates
    dropped. No other filtering (prose lines with ". " early are kept, unnumbered lines are not)."""
    out: list[str] = []
    for line in reply.split("\n"):
        if ". " in line[:5]:
            text = line[line.find(".") + 2:].split("(")[0].strip().replace("<|endoftext|>", "").replace("<pad>", "")
            text = text.replace("!", "")
            if text and text not in out:
                out.append(text)
    return out


def dedup_key(mode: str) -> Callable[[str], str]:
    """How two candidates count as the same: ``normalised`` (case, spacing and edge punctuation
    ignored; this suite's default) or ``exact`` (the official code's string equality)."""
    return normalise if mode == "normalised" else str


def annotate_reply(reply: str, new: Iterable[str]) -> list[tuple[str, bool]]:
    """Each non-blank line of a raw reply and whether it became one of ``new`` (the step's new
    candidates, as the loop parsed them); every other line was dropped: not a candidate, an echo,
    or a repeat of one already seen. For the viewer, which shows the reply as the LLM wrote it."""
    fresh = {normalise(t) for t in new}
    out = []
    for raw in reply.splitlines():
        if not raw.strip():
            continue
        key = "" if _junk(raw) else normalise(_clean_line(raw)[0])
        out.append((raw, key in fresh))
        fresh.discard(key)  # a candidate written twice was parsed once
    return out


# transformers 4.x's clean_up_tokenization (tokenization_utils_base.py), in its order
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def official_cleanup(text: str) -> str:
    """A reply as the MILS code read it: its text-generation pipeline (transformers 4.x) decoded with
    ``clean_up_tokenization_spaces=True`` (Llama 3's tokenizer config), which removes the space before
    . ? ! , and English contractions (" n't" -> "n't"). transformers 5 does not apply it to BPE
    tokenizers and engines return their own text, so the paper profile applies it to every backend's
    reply before parsing (``loop.cleanup: official``)."""
    for old, new in _CLEANUP:
        text = text.replace(old, new)
    return text
