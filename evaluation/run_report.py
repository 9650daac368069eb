"""One shareable report per run: a single static HTML file (no server, no script, images inline)
that a researcher can mail or attach: the headline sentence, one metric table (step 0, final, the
paired change with its interval and the share of resamples in which it is positive), every sample's
best score by step (thin lines, the mean in bold), and the most improved and most hurt samples with
their image, step-0 caption, final caption and references. ``mils report RUN_FOLDER`` writes it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from mils.config import headline
from mils.engine import strategy_title
from mils.files import write_atomic

SHOWN = 3  # most improved and most hurt samples
STYLE = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
         "text-align:right}td:first-child,th:first-child{text-align:left}.headline{font-size:1.15em;"
         "background:#f4f7fb;padding:.8em 1em;border-radius:6px}.sample{display:flex;gap:1em;margin:1em 0;"
         "border:1px solid #ddd;border-radius:6px;padding:.8em}.sample img{max-width:220px;max-height:220px}"
         ".wide{overflow-x:auto}.wide td{white-space:nowrap}"
         ".muted{color:#666;font-size:.9em}.up{color:#1a7f37}.down{color:#b42318}")


def headline_sentence(record: dict[str, Any]) -> str:
    """One sentence: how the optimised score and the headline metric moved, and what it cost."""
    parts = []
    gain = record.get("score_gain") or {}
    n = sum(int(gain.get(k, 0)) for k in ("wins", "ties", "losses"))
    if n:
        who = strategy_title(((record.get("config") or {}).get("loop") or {}).get("strategy", "mils"))
        parts.append(f"{who} raised the optimised score on {gain['wins']} of {n} samples (mean change "
                     f"{gain['delta']:+.3f}, 95% interval [{gain['low']:+.3f}, {gain['high']:+.3f}])")
    metric = next(iter(headline(record.get("gain") or {})), None)
    if metric:
        g = record["gain"][metric]
        parts.append(f"{metric} went from {100 * g['a']:.1f} to {100 * g['b']:.1f} ({100 * g['delta']:+.1f} "
                     f"[{100 * g['low']:+.1f}, {100 * g['high']:+.1f}])")
    cost = record.get("cost") or {}
    if cost.get("generated_tokens") is not None and cost.get("samples"):
        parts.append(f"at {cost['generated_tokens'] / cost['samples']:,.0f} generated tokens per sample")
    return ("; ".join(parts) + ".") if parts else "No recorded metrics: this folder has no run record (run.json)."


def folder_headline(folder: Path, problems: list[tuple[Path, str]]) -> str:
    """The headline sentence of a results folder's record (empty without one; an unreadable record is
    added to ``problems``, as the viewer lists them)."""
    from evaluation.run_record import read_record
    from mils.errors import InputError
    from mils.storage import RunFolder

    try:
        record = read_record(folder)
        return headline_sentence(record.as_dict()) if record else ""
    except InputError as err:
        problems.append((RunFolder(folder).record, f"unreadable run record: {err}"))
        return ""


def metric_rows(record: dict[str, Any]) -> list[list[str]]:
    """metric | step 0 | final | change [95% CI] | share of resamples with a positive change (x100)."""
    rows = []
    for name in headline(record.get("gain") or {}):
        g = record["gain"][name]
        rows.append([name, f"{100 * g['a']:.1f}", f"{100 * g['b']:.1f}",
                     f"{100 * g['delta']:+.1f} [{100 * g['low']:+.1f}, {100 * g['high']:+.1f}]",
                     f"{1 - g.get('p_not_better', float('nan')):.0%}"])
    return rows


SHARE = "share of resamples with change > 0"  # one name for it: console, report, README
HEADER = ("metric", "step 0", "final", "change [95% CI]", SHARE)
UNITS = "reference metrics x100; the optimised score on its scorer's own scale"


def table_rows(record: dict[str, Any]) -> list[list[str]]:
    """The metric rows, then the optimised scorer's row when the record has one."""
    score = score_row(record)
    return metric_rows(record) + ([score] if score else [])


def score_row(record: dict[str, Any]) -> list[str] | None:
    """The optimised scorer's row, on its own scale (3 decimals)."""
    g = record.get("score_gain")
    if not g:
        return None
    way = "" if g.get("higher_is_better", True) else " (lower is better)"
    return [f"optimised score{way}", f"{g['a']:.3f}", f"{g['b']:.3f}",
            f"{g['delta']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]", f"{1 - g.get('p_not_better', float('nan')):.0%}"]


def console_table(record: dict[str, Any]) -> str:
    """The run's one metric table for the terminal: metric | step 0 | final | change [CI] | share."""
    from evaluation.tables import text_table

    rows = table_rows(record)
    if not rows:
        return "(no metrics recorded)"
    return (text_table(HEADER, rows)
            + f"\n({UNITS}; paired bootstrap over the samples: one resample scores both steps; corpus values as the "
              "official scripts report them)")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def curves_plot(results) -> str:
    """Every sample's best score by step (thin), their mean (bold), as an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    longest = max(len(r.history) for r in results)
    curves = np.array([[h.best_score for h in r.history] + [r.history[-1].best_score] * (longest - len(r.history))
                       for r in results])
    for curve in curves:
        ax.plot(range(longest), curve, color="#8aa4c8", linewidth=0.8, alpha=0.6)
    ax.plot(range(longest), curves.mean(0), color="#1f3b73", linewidth=2.5, label=f"mean of {len(results)} samples")
    ax.set_xlabel("step (0 = the initial bank's best)")
    ax.set_ylabel("best score so far")
    ax.set_xticks(range(longest))
    ax.legend()
    return _png(fig)


def _thumbnail(path: str | None, root: Path | None, folder: Path) -> str | None:
    """The sample's image, small and inline, when it lies in the results folder or the trusted media root."""
    if not path:
        return None
    from PIL import Image, UnidentifiedImageError

    file = Path(path).resolve()
    if not any(base is not None and file.is_relative_to(base.resolve()) for base in (folder, root)):
        return None
    try:
        with Image.open(file) as image:
            image = image.convert("RGB")
            image.thumbnail((256, 256))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=85)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _sample_card(result, change: float, references: list[str], picture: str | None) -> str:
    esc = html.escape
    image = f'<img alt="" src="{picture}">' if picture else '<div class="muted">(no image shown)</div>'
    refs = "".join(f"<li>{esc(r)}</li>" for r in references) or "<li class='muted'>(no references here)</li>"
    css = "up" if change > 0 else "down" if change < 0 else ""
    return (f'<div class="sample">{image}<div><b>{esc(result.sample_id)}</b> <span class="{css}">{change:+.3f}'
            f"</span><br><span class='muted'>step 0 ({result.initial.best_score:.3f}):</span> "
            f"{esc(result.initial.best)}<br><span class='muted'>final ({result.score:.3f}):</span> "
            f"{esc(result.history[-1].best)}<br><span class='muted'>references:</span><ul>{refs}</ul></div></div>")


def page(title: str, body: str) -> str:
    """A self-contained page: no script, nothing fetched (the policy allows inline images and style only)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'\"><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>\n")


def html_table(header, rows) -> str:
    esc = html.escape
    return ("<table><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows) + "</table>")


def run_report_html(folder: str | Path, references: dict[str, list[str]] | None = None) -> str:
    """The report of a finished run (its results, and its record when there is one)."""
    from evaluation.finished_run import FinishedRun
    from mils.storage import trusted_media_root

    run = FinishedRun.open(folder)
    results, record = run.results(), run.record.as_dict() if run.record else {}
    higher = run.higher_is_better(results)
    sign = 1.0 if higher else -1.0
    changes = sorted(((sign * (r.score - r.initial.best_score), r) for r in results), key=lambda c: c[0])
    root, _ = trusted_media_root(run.folder)
    references = references or {}
    esc = html.escape
    name = (record.get("config") or {}).get("name") or run.folder.name
    rows = table_rows(record)

    def cards(chosen) -> str:
        return "".join(_sample_card(r, c, references.get(r.sample_id, []), _thumbnail(r.media, root, run.folder))
                       for c, r in chosen)

    improved = [c for c in reversed(changes) if c[0] > 0][:SHOWN]
    hurt = [c for c in changes if c[0] < 0][:SHOWN]
    return page(f"MILS run {name}",
                f"<p class='muted'>{len(results)} samples; scores {'higher' if higher else 'lower'} is better; "
                f"{esc(str(run.folder))}</p><p class='headline'>{esc(headline_sentence(record))}</p>"
                + (f"<h2>Metrics</h2>{html_table(HEADER, rows)}<p class='muted'>{UNITS}</p>" if rows else "")
                + f"<h2>Best score by step</h2><img alt='best score by step' src='{curves_plot(results)}'>"
                f"<h2>Most improved</h2>{cards(improved) or '<p class=muted>none</p>'}"
                f"<h2>Most hurt</h2>{cards(hurt) or '<p class=muted>none</p>'}")


def sweep_report_html(title: str, headline: str, header, rows, note: str, plots: dict[str, bytes]) -> str:
    """A sweep's report: the headline, the variants' table, and the sweep's plots (PNG bytes by caption)."""
    esc = html.escape
    figures = "".join(f"<h2>{esc(caption)}</h2><img alt='{esc(caption)}' style='max-width:100%' "
                      f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>" for caption, data in plots.items())
    return page(f"MILS sweep {title}", f"<p class='headline'>{esc(headline)}</p><h2>Variants</h2>"
                f"<div class='wide'>{html_table(header, rows)}</div><p class='muted'>{esc(note)}</p>{figures}")


def write_run_report(folder: str | Path, out: str | Path | None = None,
                     references: dict[str, list[str]] | None = None) -> Path:
    """``report.html`` in the results folder (or at ``out``)."""
    path = Path(out) if out else Path(folder) / "report.html"
    return write_atomic(path, run_report_html(folder, references))
