"""Is iterating worth it here? MILS vs best-of-N at equal generated tokens vs retrieval, over seeds.

Reads the runs of ``mils sweep configs/strategies_seeds.yaml`` (a sweep over ``loop.strategy`` and
``loop.seed`` with one ``loop.budget``), rescores every run with the run's own scorer (the
self-check: it must reproduce the stored scores) and the reference metrics by step (the held-out
judge offline: no second image-text model ships in a PyPI package), and writes to ``--out``:
``strategies.csv`` (one row per run), ``pooled.csv`` (MILS and best-of-N against retrieval and
each other, every (seed, sample) pair pooled), ``by_step.png`` (optimised score and CIDEr by step,
mean over seeds) and the frontier of all runs (``frontier.csv``, ``frontier.png``). Prints the
tables as markdown.

    .venv/bin/mils sweep configs/strategies_seeds.yaml     # ~26 min on 2 CPU cores
    .venv/bin/python benchmarks/strategies.py               # ~5 min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def runs(config_path: str) -> list[tuple[dict, Path]]:
    """(swept point, results folder) of each variant, where `mils sweep` wrote it."""
    from flows.sweep import expand_sweep, sweep_name, variant_config
    from mils.components import plan_run
    from mils.storage import RunFolder

    _, variants = expand_sweep(config_path)
    found = [(point, plan_run(variant_config(config, sweep_name(config_path), point, per_variant=True)).results_dir)
             for point, config in variants]
    missing = [str(folder) for _, folder in found if not RunFolder(folder).samples.is_dir()]
    if missing:
        raise SystemExit(f"{len(missing)} runs of {config_path} are missing (e.g. {missing[0]}): "
                         f"run `mils sweep {config_path}` first")
    return found


def measure(point: dict, folder: Path, scorers: dict) -> tuple[dict, dict[str, float], pd.DataFrame]:
    """One run's row, its final score per sample and its by-step curve (optimised, CIDEr, BLEU);
    ``scorers``: the scorers loaded so far, by their config (each is loaded once)."""
    from evaluation.finished_run import FinishedRun
    from evaluation.rescore import rescore
    from mils.components import build_scorer, plan_scorer
    from mils.config import ScorerConfig
    from mils.engine import spent

    run = FinishedRun.open(folder, need_config=True)
    config, results = run.config, run.results()
    own = ScorerConfig(name=config.scorer.name, options=config.scorer.options)
    key = own.model_dump_json()
    scorers[key] = scorers.get(key) or build_scorer(plan_scorer(own, config.plugins))
    table, curve, _ = rescore(folder, own, metrics=("CIDEr", "BLEU"), scorer=scorers[key])
    steps = table[table["step"] != "kept"]
    drift = float((steps["optimised"] - steps["held_out"]).abs().max())
    n = len(results)
    row = {"strategy": point["loop.strategy"], "seed": point["loop.seed"], "run": folder.name, "samples": n,
           "step0": sum(r.history[0].best_score for r in results) / n, "final": sum(r.score for r in results) / n,
           "improved": sum(r.score > r.history[0].best_score + 1e-9 for r in results),
           "steps": sum(len(r.history) - 1 for r in results) / n,
           "tokens_per_sample": sum(spent(r.cost, "generated_tokens") for r in results) / n,  # what the budget counts
           "llm_seconds_per_sample": sum(spent(r.cost, "llm_seconds") for r in results) / n,
           "CIDEr_step0": float(curve["CIDEr"].iloc[0]), "CIDEr_final": float(curve["CIDEr"].iloc[-1]),
           "self_check_max_diff": drift}
    return row, {f"{row['seed']}/{r.sample_id}": r.score for r in results}, curve


def pooled(scores: dict[str, dict[str, float]]) -> pd.DataFrame:
    from evaluation.paired import paired_scores

    rows = []
    for a, b in (("retrieval", "mils"), ("retrieval", "best_of_n"), ("best_of_n", "mils")):
        versus = paired_scores(scores[a], scores[b])
        rows.append({"A": a, "B": b, "pairs": versus.wins + versus.ties + versus.losses, "delta": versus.mean.delta,
                     "low": versus.mean.low, "high": versus.mean.high, "wins": versus.wins, "ties": versus.ties,
                     "losses": versus.losses})
    return pd.DataFrame(rows)


def plot(curves: dict[str, list[pd.DataFrame]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for strategy, members in curves.items():
        last = max(int(c.index.max()) for c in members)  # a seed whose samples all stopped earlier: its last step
        mean = pd.concat([c.reindex(range(last + 1)).ffill() for c in members]).groupby(level=0).mean()
        for ax, column in zip(axes, ("optimised", "CIDEr")):
            ax.plot(mean.index, mean[column], marker="o", label=f"{strategy} ({len(members)} seeds)")
    axes[0].set_ylabel("optimised score (the scorer's), mean best")
    axes[1].set_ylabel("CIDEr x100 (held out: human references)")
    for ax in axes:
        ax.set_xlabel("step (0 = the bank's best)")
        ax.legend(fontsize=8)
    fig.suptitle("strategies at equal generated tokens, mean over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/strategies_seeds.yaml")
    parser.add_argument("--out", default="outputs/strategies")
    args = parser.parse_args(argv)
    from evaluation.frontier import frontier
    from evaluation.tables import text_table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, scores, curves, scorers = [], {}, {}, {}
    found = runs(args.config)
    for point, folder in found:
        row, final, curve = measure(point, folder, scorers)
        rows.append(row)
        scores.setdefault(row["strategy"], {}).update(final)
        curves.setdefault(row["strategy"], []).append(curve)
    table = pd.DataFrame(rows)
    table.to_csv(out / "strategies.csv", index=False)
    versus = pooled(scores)
    versus.to_csv(out / "pooled.csv", index=False)
    plot(curves, out / "by_step.png")
    frontier([folder for _, folder in found], out)
    means = table.groupby("strategy", sort=False).mean(numeric_only=True).drop(columns="seed").reset_index()
    for frame in (table.drop(columns="run"), means, versus):
        print(text_table(list(frame.columns), frame.values.tolist()), end="\n\n")
    print(f"\nwritten to {out}/: strategies.csv, pooled.csv, by_step.png, frontier.csv, frontier.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
