"""A sweep's variants as tables for a paper, from the columns `mils report` reads off MLflow.

- :func:`full_table`: every final metric with its 95% interval, every paired gain over step 0, W/T/L
  and the cost, units in every header (metrics x100; the optimised scorer's gain on its own scale);
  ``report.csv``.
- :func:`headline_table`: what fits a page (article's text width, tested): the swept settings, the
  headline metric with its interval, its change from step 0, the scorer's change with 3 decimals and
  its interval, W/T/L, tokens per sample.
- :func:`latex`: either one as a booktabs table, best of each column in bold, readable headers,
  a caption that says the units and a label; the MLflow run id goes in a comment, not the caption.
"""

from __future__ import annotations

import pandas as pd

from mils.config import higher_is_better, primary_metric

LOW, HIGH = " low", " high"


def _finals(table: pd.DataFrame) -> list[str]:
    return sorted(c.removeprefix("final/") for c in table.columns
                  if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))


def setting_names(table: pd.DataFrame) -> dict[str, str]:
    """``sweep.loop.steps`` -> ``steps`` (the whole dotted name where two settings share a last part)."""
    swept = [c for c in table.columns if c.startswith("sweep.")]
    last = [c.rsplit(".", 1)[-1] for c in swept]
    return {c: (short if last.count(short) == 1 else c.removeprefix("sweep.")) for c, short in zip(swept, last)}


def _with_interval(out: pd.DataFrame, table: pd.DataFrame, header: str, column: str, scale: float) -> None:
    if column in table:
        out[header] = scale * table[column]
        for suffix, ci in ((LOW, "_ci_low"), (HIGH, "_ci_high")):
            if column + ci in table:
                out[header + suffix] = scale * table[column + ci]


def full_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every column a paper could want, one row per variant, each header with its unit."""
    out = pd.DataFrame({short: table[c] for c, short in setting_names(table).items()})
    for name in _finals(table):
        _with_interval(out, table, f"{name} (x100)", f"final/{name}", 100)
    for name in _finals(table):
        _with_interval(out, table, f"change in {name} from step 0 (x100)", f"gain/{name}", 100)
    _with_interval(out, table, "change in the optimised score from step 0 (scorer units)", "gain/score", 1)
    for column, header in (("gain/wins", "samples improved"), ("gain/ties", "samples unchanged"),
                           ("gain/losses", "samples worse"),
                           ("cost/generated_tokens_per_sample", "generated tokens per sample"),
                           ("cost/seconds_per_sample", "seconds per sample"),
                           ("cost/dollars_per_sample", "dollars per sample")):
        if column in table:
            out[header] = table[column]
    out["MLflow run"] = table["run_id"]
    return out


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table that fits a page: settings, metric [CI], its change, the scorer's change, W/T/L, tokens."""
    out = pd.DataFrame({short: table[c] for c, short in setting_names(table).items()})
    metric = primary_metric(_finals(table))
    if metric is not None:
        _with_interval(out, table, metric, f"final/{metric}", 100)
        if f"gain/{metric}" in table:  # its interval is in report.csv and --full: the page holds two intervals
            out[f"Δ {metric}"] = 100 * table[f"gain/{metric}"]
    _with_interval(out, table, "Δ score", "gain/score", 1)
    if {"gain/wins", "gain/ties", "gain/losses"} <= set(table.columns):
        out["W/T/L"] = [f"{int(w)}/{int(t)}/{int(n)}" if pd.notna(w) else "-"
                        for w, t, n in zip(table["gain/wins"], table["gain/ties"], table["gain/losses"])]
    if "cost/generated_tokens_per_sample" in table:
        out["tokens / sample"] = table["cost/generated_tokens_per_sample"]
    return out


def _digits(header: str) -> int:
    return 3 if header.startswith("Δ score") or "scorer units" in header else 0 if "tokens" in header else 1


def _better(header: str) -> str | None:
    """Which way a column is better (for the bold), None for settings and counts."""
    if "tokens" in header or "seconds" in header or "dollars" in header:
        return "low"
    metric = header.removeprefix("Δ ").removeprefix("change in ").split(" (")[0].split(" from")[0]
    if header.startswith(("Δ", "change in")):
        return "high"  # a change from step 0 is signed so that up is better
    return ("high" if higher_is_better(metric) else "low") if metric in _metric_names() else None


def _metric_names() -> set[str]:
    from mils.config import METRICS

    return {r for m in METRICS.values() for r in m.reports}


def _esc(text) -> str:
    return "".join("\\" + c if c in "&%$#_{}" else {"~": r"\textasciitilde{}", "^": r"\^{}",
                                                   "\\": r"\textbackslash{}"}.get(c, c) for c in str(text))


def _header(text: str) -> str:
    return _esc(text).replace("Δ", r"$\Delta$")


def latex(shown: pd.DataFrame, caption: str, label: str, comment: str = "") -> str:
    """``shown`` (:func:`headline_table` or :func:`full_table`) as a booktabs table: each value with
    its interval (a column ``X`` with ``X low``/``X high``), the best of each metric column in bold."""
    columns = [c for c in shown.columns if not c.endswith((LOW, HIGH)) and c != "MLflow run"]
    best = {}
    for c in columns:
        way = _better(c)
        if way and pd.api.types.is_numeric_dtype(shown[c]) and shown[c].notna().any():
            best[c] = shown[c].max() if way == "high" else shown[c].min()

    def cell(row, c) -> str:
        value = row[c]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or pd.isna(value):
            return _esc(value) if not (isinstance(value, float) and pd.isna(value)) else "--"
        d = _digits(c)
        text = f"{value:+.{d}f}" if c.startswith("Δ") or c.startswith("change") else f"{value:.{d}f}"
        if c in best and value == best[c]:
            text = r"\textbf{" + text + "}"
        if c + LOW in shown and pd.notna(row[c + LOW]):
            text += r" {\scriptsize[" + f"{row[c + LOW]:.{d}f}, {row[c + HIGH]:.{d}f}" + "]}"
        return text

    align = "".join("r" if pd.api.types.is_numeric_dtype(shown[c]) else "l" for c in columns)
    lines = ([f"% {comment}"] if comment else []) + [
        r"\begin{table}[t]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{3pt}",
        r"\begin{tabular}{" + align + "}", r"\toprule", " & ".join(_header(c) for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(row, c) for c in columns) + r" \\" for _, row in shown.iterrows()]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _esc(caption).replace("Δ", r"$\Delta$") + "}",
              r"\label{" + label + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def caption_for(shown: pd.DataFrame, settings: list[str]) -> str:
    metric = next((c for c in shown.columns if c in _metric_names()), None)
    over = ", ".join(settings) if settings else "its variants"
    parts = [f"MILS over {over}."]
    if metric:
        parts.append(f"{metric} x100 with bootstrap 95% intervals; Δ {metric}: paired change from step 0 (x100; "
                     "its interval is in report.csv).")
    parts.append("Δ score: paired change of the optimised scorer's score from step 0, on its own scale. "
                 "W/T/L: samples whose score rose, stayed, fell. Best of each column in bold.")
    return " ".join(parts)
