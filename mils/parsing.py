"""Turning an LLM reply into clean candidate texts.

Small instruction-tuned models answer the MILS prompt messily: numbered or bulleted lists in
several styles, markdown bold, quoted candidates followed by an explanation, echoed
``0.167: caption`` score prefixes, ``A:`` labels, prose preambles. This module keeps the
candidates and drops the rest; it never raises on a reply, it returns what it could use.
"""

from __future__ import annotations

import re
from typing import Iterable

_MARKER = re.compile(
    r"""^\s*(?:
        \**\(?\d{1,3}\s*[.):\]]\**      # 1.  1)  (1)  **1.**  1:
      | [-*\u2022\u2013>]+(?=\s)        # - * bullet en-dash >
      | \#{1,6}(?=\s)                   # markdown heading
    )\s*""",
    re.X,
)
_SCORE_PREFIX = re.compile(
    r"^(?:the\s+|score\s*)?\(?\s*(?:\d*\.\d+|[01])\s*\)?\s*[:=\-\u2013|]\s*", re.I
)
_LABEL = re.compile(
    r"^(?:[A-Z]|Q|A\d*|Description\s*\d*|Caption\s*\d*|New description\s*\d*|Score)\s*:\s*",
    re.I,
)
_QUOTED = re.compile(r"""^["\u201c'](.+?)["\u201d'](?=\s|$|[.,;:!?)\-\u2013])""")
_TRAILING = re.compile(r"\s+(?:[-\u2013\u2014]\s|\(|\[|//|\bscore\b\s*[:=]).*$", re.I)
_PREAMBLE = re.compile(
    r"^(?:here\s+(?:are|is)|sure|certainly|okay|ok\b|i\s|i'm|these|note|below|the following"
    r"|additional|new descriptions|based on|to maximize)",
    re.I,
)
_SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|<pad>")
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
        line = _SCORE_PREFIX.sub("", line)
        match = _MARKER.match(line)
        if match and match.end() < len(line):
            had_marker = True
            line = line[match.end():]
        line = line.strip().strip("*_").strip()
        line = _LABEL.sub("", _SCORE_PREFIX.sub("", line))
        if line == before:
            break
    quoted = _QUOTED.match(line)
    if quoted:
        line = quoted.group(1)
    else:
        line = _TRAILING.sub("", line)
    return _WS.sub(" ", line).strip(_EDGE_PUNCT).strip(), had_marker


def _usable(text: str, max_words: int) -> bool:
    if len(text) < 3 or not re.search(r"[A-Za-z]{2}", text):
        return False
    if text.endswith(":") or _PREAMBLE.match(text):
        return False
    return len(text.split()) <= max_words


def parse_candidates(
    reply: str, exclude: Iterable[str] = (), max_words: int = 77
) -> list[str]:
    """Candidates from ``reply``, in order, deduplicated, minus anything in ``exclude``.

    List-marked lines are preferred; a reply with no list markers falls back to its plain lines.
    Lines over ``max_words`` words (run-on prose) are dropped.
    """
    marked: list[str] = []
    plain: list[str] = []
    for raw in reply.splitlines():
        text, had_marker = _clean_line(raw)
        if _usable(text, max_words):
            (marked if had_marker else plain).append(text)
    seen = {normalise(t) for t in exclude}
    out: list[str] = []
    for text in marked or plain:
        key = normalise(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out
