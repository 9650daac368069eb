"""Issue 48, item 2: the table a researcher pastes into a paper. It fits a page, its headers are
words, the scorer's gain keeps 3 decimals (+0.041 [0.000, 0.122] printed as 0.0 [0.0, 0.1] before),
the best of each column is bold, the caption says the units and has a label, and it compiles."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from evaluation.paper_table import caption_for, full_table, headline_table, latex, setting_names


def sweep(variants: int = 4) -> pd.DataFrame:
    """What sweep_children reads off MLflow for a 2 x 2 sweep (metrics on a 0-1 scale)."""
    rows = []
    for n in range(variants):
        row = {"run": f"v{n}", "run_id": f"{n:032x}", "sweep.loop.steps": str(1 + n // 2 * 2),
               "sweep.loop.keep": str(4 + n % 2 * 4), "gain/wins": 5 + n, "gain/ties": 1, "gain/losses": 2 - n % 2,
               "cost/generated_tokens_per_sample": 400.0 + 50 * n, "cost/seconds_per_sample": 3.0 + n}
        for metric, base in (("CIDEr", 0.30), ("BLEU-4", 0.05), ("METEOR", 0.15), ("SPICE", 0.09), ("ROUGE_L", 0.35)):
            value = base + 0.01 * n
            row.update({f"final/{metric}": value, f"final/{metric}_ci_low": value - 0.02,
                        f"final/{metric}_ci_high": value + 0.02, f"gain/{metric}": 0.01 * n - 0.005,
                        f"gain/{metric}_ci_low": 0.01 * n - 0.02, f"gain/{metric}_ci_high": 0.01 * n + 0.01})
        row.update({"gain/score": 0.041 if n == 0 else 0.02 * n, "gain/score_ci_low": 0.0, "gain/score_ci_high": 0.122})
        rows.append(row)
    return pd.DataFrame(rows)


def test_the_headline_table_keeps_the_scorer_gain_to_three_decimals_and_bolds_the_best():
    shown = headline_table(sweep())
    assert list(c for c in shown.columns if not c.endswith((" low", " high"))) == [
        "steps", "keep", "CIDEr", "Δ CIDEr", "Δ score", "W/T/L", "tokens / sample"]
    tex = latex(shown, caption_for(shown, ["steps", "keep"]), "tab:mils-sweep", comment="MLflow run abc")
    body = tex.split(r"\midrule")[1]
    assert r"+0.041 {\scriptsize[0.000, 0.122]}" in body
    assert r"\textbf{33.0} {\scriptsize[31.0, 35.0]}" in body  # the best CIDEr (x100, one decimal) in bold
    assert r"\textbf{400}" in body  # the fewest tokens in bold
    assert r"\label{tab:mils-sweep}" in tex and r"$\Delta$ CIDEr" in tex and "sweep." not in tex
    assert "MLflow" not in tex.split(r"\caption{")[1]  # the run id is a comment, not the caption
    assert "x100" in tex.split(r"\caption{")[1]


def test_the_csv_says_its_units_and_keeps_every_column():
    table = full_table(sweep())
    assert {"CIDEr (x100)", "CIDEr (x100) low", "change in CIDEr from step 0 (x100)",
            "change in the optimised score from step 0 (scorer units)", "samples improved",
            "generated tokens per sample", "MLflow run"} <= set(table.columns)
    assert table["CIDEr (x100)"].iloc[0] == pytest.approx(30.0)
    assert table["change in the optimised score from step 0 (scorer units)"].iloc[0] == pytest.approx(0.041)


def test_settings_keep_their_whole_name_only_where_two_share_a_last_part():
    table = pd.DataFrame({"sweep.loop.seed": [1], "sweep.dataset.seed": [2], "sweep.loop.keep": [3], "run_id": ["x"]})
    assert setting_names(table) == {"sweep.loop.seed": "loop.seed", "sweep.dataset.seed": "dataset.seed",
                                    "sweep.loop.keep": "keep"}


PDFLATEX = shutil.which("pdflatex")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (make setup installs texlive-latex-base and "
                                             "texlive-latex-recommended)")
def test_the_headline_table_compiles_and_fits_the_text_width(tmp_path):
    shown = headline_table(sweep())
    tex = latex(shown, caption_for(shown, ["steps", "keep"]), "tab:mils-sweep")
    (tmp_path / "report.tex").write_text(tex)
    tabular = tex[tex.index(r"\footnotesize"): tex.index(r"\end{tabular}") + len(r"\end{tabular}")]
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n\\begin{document}\n"
        "\\newsavebox{\\inner}\\sbox{\\inner}{" + tabular + "}\n"
        "\\typeout{TABLEWIDTH=\\the\\wd\\inner}\\typeout{TEXTWIDTH=\\the\\textwidth}\n"
        "Table~\\ref{tab:mils-sweep} shows the sweep.\n\\input{report.tex}\n\\end{document}\n")
    for _ in range(2):  # twice: the reference resolves on the second pass
        done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "paper.log").read_text()
    width, text = (float(re.search(rf"{name}=([\d.]+)pt", log).group(1)) for name in ("TABLEWIDTH", "TEXTWIDTH"))
    assert width <= text, f"the table is {width:.0f}pt wide, the text {text:.0f}pt"
    assert (tmp_path / "paper.pdf").stat().st_size > 1000 and "??" not in log
