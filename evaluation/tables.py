"""Plain-text tables for the terminal (results, sweep reports)."""

from __future__ import annotations

from typing import Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]], floats: str = "{:.3f}") -> str:
    """Left-aligned columns under a header and a rule; floats formatted with ``floats``."""
    cells = [[floats.format(c) if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    return "\n".join([line, "-" * len(line), *("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)])
