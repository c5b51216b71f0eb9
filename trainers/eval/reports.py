"""Reports of a run folder: ``summary.md/.csv/.json``, ``breakdown.csv``, the accuracy plot, and
the comparison of several runs (``comparison.md/.csv/.png``). Every file is written atomically.

Runs of published degraded benchmarks (MMD-Bench, R-Bench: :mod:`trainers.eval.predegraded`) go
into the same tables and plots: their levels sit on the same intensity axis, the rows of
MMD-Bench's per-degradation files form the per-degradation table (never the level table), type
scores are left out where the file does not record the degradation, and the summary says that no
degradation was applied by us. Circular benchmarks (MMBench) also get the circular accuracy."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from factory.errors import ConfigError, InputError
from factory.layout import atomic_write

from .config import LEVEL_NAMES, level_name
from .scoring import level_scores, mean, summarize

__all__ = ["compare", "load_run", "plot_accuracy", "read_jsonl", "summarize_run", "summary_markdown", "write_reports"]

PER_DEGRADATION = "per-degradation"
"""``variant`` of the rows asked on a per-degradation file (MMD-Bench): they form the per-degradation
table, not the level table."""
_TYPE_FIELDS = ("type_precision", "type_recall", "type_f1", "intensity_mae")

log = logging.getLogger("robust_r1.evaluate")


def read_jsonl(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Complete rows of a JSONL file; a torn last line (a killed run) is dropped, and with
    ``repair`` cut off the file so appends start on a clean line."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    rows = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: skipping a corrupt line", path)
    return rows


_COLUMNS = (
    ("level", "level", "{}"), ("n", "n", "{}"), ("accuracy", "accuracy", "{:.4f}"),
    ("drop", "drop from clean", "{:+.4f}"),
    ("type_precision", "type P", "{:.3f}"), ("type_recall", "type R", "{:.3f}"), ("type_f1", "type F1", "{:.3f}"),
    ("intensity_mae", "intensity MAE", "{:.3f}"), ("format_valid", "format valid", "{:.3f}"),
    ("output_tokens", "output tokens", "{:.1f}"), ("reasoning_words", "reasoning words", "{:.1f}"),
)


def _fmt(v: Any, f: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v)


def _markdown(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def summary_markdown(summary: Mapping[str, Any]) -> str:
    circular = any(sc.get("circular_accuracy") is not None for sc in summary.get("levels", []))
    rows = []
    for sc in summary.get("levels", []):
        name = f"{sc['name']} ({sc['level']:.2f})" if sc["level"] else sc["name"]
        cells = [name] + [_fmt(sc.get(k), f) for k, _, f in _COLUMNS[1:]]
        if circular:
            cells.insert(3, _fmt(sc.get("circular_accuracy"), "{:.4f}"))
        rows.append(cells)
    head = [c[1] for c in _COLUMNS]
    if circular:
        head.insert(3, "circular accuracy")
    return _markdown(head, rows)


def _csv(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


def _breakdown_markdown(summary: Mapping[str, Any], by: str) -> str:
    items = [b for b in summary.get("breakdown", []) if b["by"] == by]
    levels = sorted({b["level"] for b in items})
    names = list(dict.fromkeys(b["name"] for b in items))
    cell = {(b["name"], b["level"]): b for b in items}
    rows = []
    for n in names:
        cells = []
        for lv in levels:
            b = cell.get((n, lv))
            if b is None:
                cells.append("–")
            else:
                rec = f", seen {b['type_recall']:.2f}" if b["type_recall"] is not None else ""
                cells.append(f"{b['accuracy']:.2f} (n={b['n']}{rec})")
        rows.append([n] + cells)
    return _markdown([by] + [level_name(lv) for lv in levels], rows)


def _prefix(row_id: str) -> str:
    return str(row_id).split(":", 1)[0]


def _circular_accuracy(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """VLMEvalKit's circular score: rows whose index agrees modulo 1,000,000 are rolls of one
    question, which counts only when every roll is right (``None`` when an index is not a number)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        raw = str(r["id"]).split(":", 1)[-1].split("@", 1)[0]
        try:
            g = int(raw) % 1_000_000
        except ValueError:
            return None
        groups.setdefault((_prefix(r["id"]), g), []).append(float(r["correct"] or 0.0))
    if not groups:
        return None
    return sum(all(c >= 1.0 for c in cs) for cs in groups.values()) / len(groups)


def summarize_run(meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], label: str = "") -> dict[str, Any]:
    """:func:`trainers.eval.scoring.summarize` of a run folder's rows, plus what published degraded
    benchmarks and circular benchmarks need (see the module docstring)."""
    bench = meta.get("benchmark") or {}
    pre = bench.get("predegraded") or {}
    level_rows = [r for r in rows if r.get("variant") != PER_DEGRADATION]
    per_rows = [r for r in rows if r.get("variant") == PER_DEGRADATION]
    summary = summarize(level_rows, label)
    names = pre.get("levels") or {}
    circular = set(bench.get("circular") or []) if isinstance(bench.get("circular"), list) else set()
    for sc in summary["levels"]:
        at = [r for r in level_rows if round(float(r["level"]), 2) == sc["level"]]
        known = [r for r in at if r.get("type_truth") != "unknown"]
        if len(known) < len(at):  # the file does not say which degradation an image got
            typed = level_scores(known) if known else {}
            for k in _TYPE_FIELDS:
                sc[k] = typed.get(k)
        name = names.get(f"{sc['level']:g}")
        if name and sc["level"]:
            sc["name"] = f"{name.split(' ')[0]} · {level_name(sc['level'])}" if sc["level"] in LEVEL_NAMES else name
        if circular:
            sc["circular_accuracy"] = _circular_accuracy([r for r in at if _prefix(r["id"]) in circular])
    if per_rows:
        per = summarize(per_rows)
        summary["breakdown"] += [{**b, "source": PER_DEGRADATION} for b in per["breakdown"]]
        summary["per_degradation"] = per["levels"]
    prefixes = sorted({_prefix(r["id"]) for r in rows})
    if len(prefixes) > 1:
        for px in prefixes:
            for lv in sorted({round(float(r["level"]), 2) for r in level_rows if _prefix(r["id"]) == px}):
                rs = [r for r in level_rows if _prefix(r["id"]) == px and round(float(r["level"]), 2) == lv]
                item = {"by": "benchmark", "name": px, "level": lv, "n": len(rs),
                        "accuracy": mean(r["correct"] for r in rs), "type_recall": None}
                if px in circular:
                    item["circular_accuracy"] = _circular_accuracy(rs)
                summary["breakdown"].append(item)
    if pre:
        summary["predegraded"] = dict(pre)
    return summary


Scope = tuple[Iterable[str], Iterable[float]]
"""``(question ids, levels)``: the part of a run folder a report covers."""


def load_run(run_dir: str | Path, scope: Scope | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(run.json, predictions)`` of a run folder; :class:`factory.errors.InputError` (a
    ``ValueError``) when it is not one.

    Only the levels of the run's last configuration are kept (a folder can hold answers at levels
    a later run no longer asks for); ``scope = (ids, levels)`` narrows the rows further."""
    d = Path(run_dir)
    if not (d / "run.json").is_file():
        raise InputError(f"{d}: not an evaluation run (no run.json); pass a folder written by `robust-r1 eval`.")
    meta = json.loads((d / "run.json").read_text())
    rows = read_jsonl(d / "predictions.jsonl")
    levels = {round(float(x), 2) for x in meta.get("config", {}).get("levels") or []}
    if levels:
        rows = [r for r in rows if round(float(r["level"]), 2) in levels]
    if scope is not None:
        ids, lv = set(scope[0]), {round(float(x), 2) for x in scope[1]}
        rows = [r for r in rows if r["id"] in ids and round(float(r["level"]), 2) in lv]
    return meta, rows


def write_reports(run_dir: str | Path, scope: Scope | None = None) -> dict[str, Any]:
    """(Re)write ``summary.md/.csv/.json``, ``breakdown.csv`` and the plot of a run folder
    (``scope = (ids, levels)``: the questions and levels of the run that just ended)."""
    d = Path(run_dir)
    meta, rows = load_run(d, scope)
    summary = summarize_run(meta, rows, meta.get("label", d.name))
    cfg = meta.get("config", {})
    bench = meta.get("benchmark", {})
    pre = bench.get("predegraded")
    questions = len({r["id"].split("@", 1)[0] for r in rows})
    if pre:
        images = (f"images as published by {pre.get('source')}: already degraded, **no degradation applied by us**; "
                  "levels " + ", ".join(f"{v} = {float(k):g}" for k, v in (pre.get("levels") or {}).items())
                  + " on our intensity axis")
        if pre.get("per_degradation"):
            images += f"; per-degradation files at 0.9: {len(pre['per_degradation'])}"
    else:
        style = cfg.get("style") or "physical"  # runs written before styles existed were physical
        images = (f"one `eval` degradation per image, nested over the levels, in the **{style}** style "
                  "(docs/degradations.md)")
    md = [
        f"# Robustness evaluation: {summary['label']}",
        "",
        f"- model: `{cfg.get('model')}`" + (f" at `{cfg.get('endpoint')}`" if cfg.get("endpoint") else ""),
        f"- benchmark: {bench.get('name')} (`{bench.get('dataset')}`, split {bench.get('split')}); "
        f"{questions} questions",
        f"- prompt: {cfg.get('prompt')}; seed {cfg.get('seed')}; {images}",
        "",
        summary_markdown(summary),
        "",
        "Accuracy uses the rewards' answer matching. Type P/R/F1 compare the `<TYPE>` names with the injected",
        "degradation (`none` on the clean image); intensity MAE is over correctly named degradations.",
    ]
    if pre:
        md += ["Where the published file does not record which degradation an image got (MMD-Bench's mixed",
               "files, R-Bench), type scores are left out (–)."]
    if any(sc.get("circular_accuracy") is not None for sc in summary["levels"]):
        md += ["Circular accuracy (VLMEvalKit's MMBench score): a question counts only when all its option rolls",
               "are answered right."]
    per_note = " (MMD-Bench's per-degradation files at 0.9)" if summary.get("per_degradation") else ""
    md += [
        "",
        f"## Per degradation{per_note} (accuracy, questions, share whose TYPE named it)",
        "",
        _breakdown_markdown(summary, "degradation"),
        "",
        "## Per stage",
        "",
        _breakdown_markdown(summary, "stage"),
        "",
    ]
    if any(b["by"] == "benchmark" for b in summary["breakdown"]):
        md += ["## Per benchmark", "", _breakdown_markdown(summary, "benchmark"), ""]
    atomic_write(d / "summary.md", "\n".join(md))
    level_fields = ["level", "name"] + [k for k, _, _ in _COLUMNS[1:]]
    if any(sc.get("circular_accuracy") is not None for sc in summary["levels"]):
        level_fields.append("circular_accuracy")
    atomic_write(d / "summary.csv", _csv(summary["levels"], level_fields))
    breakdown_fields = ["by", "name", "level", "n", "accuracy", "type_recall", "circular_accuracy", "source"]
    atomic_write(d / "breakdown.csv", _csv(summary["breakdown"], breakdown_fields))
    # which degradations the levels mean: ours in a style, or the images a benchmark published degraded
    summary["degradation"] = {"predegraded": pre.get("source")} if pre else {"style": cfg.get("style") or "physical"}
    atomic_write(d / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_accuracy([summary], d / "accuracy_vs_intensity.png")
    return summary


def plot_accuracy(
    summaries: Sequence[Mapping[str, Any]], path: str | Path, title: str = "Accuracy under degradation"
) -> Path:
    """Accuracy against intensity, one line per run."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend (a notebook's) is left alone

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ticks: set[float] = set()
    for s in summaries:
        pts = [(sc["level"], sc["accuracy"]) for sc in s["levels"] if sc["accuracy"] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s.get("label") or "run")
            ticks |= {p[0] for p in pts}
    ax.set_xticks(sorted(ticks))
    ax.set_xticklabels([level_name(t) if t in LEVEL_NAMES else f"{t:.2f}" for t in sorted(ticks)])
    ax.set_xlabel("degradation intensity")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path


def _per_degradation_table(summaries: Sequence[Mapping[str, Any]], level: float = 0.9) -> str:
    """Accuracy per degradation at ``level``, one column per run ("" when no run has any)."""
    cells = [{b["name"]: b for b in s["breakdown"] if b["by"] == "degradation" and b["level"] == level}
             for s in summaries]
    names = [n for n in _degradation_order() if any(n in c for c in cells)]
    names += sorted({n for c in cells for n in c} - set(names))
    if not names:
        return ""
    rows = [[n] + [f"{c[n]['accuracy']:.2f} (n={c[n]['n']})" if n in c else "–" for c in cells] for n in names]
    return _markdown(["degradation"] + [s["label"] for s in summaries], rows)


def _degradation_order() -> list[str]:
    from factory.degrade import names

    return names()


def compare(run_dirs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """One table (``comparison.md``/``.csv``) and one plot (``comparison.png``) for several runs."""
    if not run_dirs:
        raise ConfigError("run_dirs", "name at least one run folder", value=list(run_dirs))
    summaries = []
    for d in run_dirs:
        meta, rows = load_run(d)
        summaries.append(summarize_run(meta, rows, meta.get("label") or Path(d).name))
    labels = [s["label"] for s in summaries]
    if len(set(labels)) < len(labels):  # same model evaluated twice: tell them apart by folder
        for s, d in zip(summaries, run_dirs, strict=True):
            s["label"] = f"{s['label']} ({Path(d).name})"
    levels = sorted({sc["level"] for s in summaries for sc in s["levels"]})
    head = ["run"] + [level_name(lv) for lv in levels] + ["mean drop", "type F1 (degraded)", "format valid"]
    md_rows, csv_rows = [], []
    for s in summaries:
        by = {sc["level"]: sc for sc in s["levels"]}
        drops = [sc["drop"] for sc in s["levels"] if sc["level"] > 0 and sc["drop"] is not None]
        f1 = mean(sc["type_f1"] for sc in s["levels"] if sc["level"] > 0)
        fv = mean(sc["format_valid"] for sc in s["levels"])
        mean_drop = sum(drops) / len(drops) if drops else None
        acc = {level_name(lv): (by[lv]["accuracy"] if lv in by else None) for lv in levels}
        md_rows.append(
            [s["label"]] + [_fmt(a, "{:.4f}") for a in acc.values()]
            + [_fmt(mean_drop, "{:+.4f}"), _fmt(f1, "{:.3f}"), _fmt(fv, "{:.3f}")]
        )
        csv_rows.append({"run": s["label"], **acc, "mean_drop": mean_drop, "type_f1_degraded": f1, "format_valid": fv})
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    table = _markdown(head, md_rows)
    text = "# Robustness comparison\n\n" + table + "\n"
    per = _per_degradation_table(summaries)
    if per:
        text += ("\n## Per degradation at 100 % (0.9)\n\nOur protocol: the questions whose drawn degradation was "
                 "this one; MMD-Bench: its per-degradation file.\n\n" + per + "\n")
    atomic_write(o / "comparison.md", text)
    fields = ["run"] + [level_name(lv) for lv in levels] + ["mean_drop", "type_f1_degraded", "format_valid"]
    atomic_write(o / "comparison.csv", _csv(csv_rows, fields))
    plot_accuracy(summaries, o / "comparison.png", "Accuracy under degradation: comparison")
    return {"table": table, "summaries": summaries, "out": o}
