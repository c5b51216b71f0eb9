"""factory.report: statistics and plots of a dataset folder (issue #4, part 6)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from _dataset_fixture import make_dataset, rows_of
from factory import report
from factory.cli import dataset as dataset_cli

PNGS = {
    "counts_by_degradation.png",
    "counts_by_stage.png",
    "intensity_hist.png",
    "length_vs_intensity.png",
    "gallery.png",
}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("rep") / "ds", n_sft=4, n_rl=9, n_val=3, rl_shards=2)
    stats = report.make_report(root)
    return root, stats


def _all_rows(root):
    return [r for cfg in ("sft", "rl", "validation") for r in rows_of(root, cfg)]


def test_writes_every_plot_stats_and_summary(ds):
    root, stats = ds
    out = root / "report"
    assert {p.name for p in out.glob("*.png")} == PNGS
    for name in PNGS:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100
    assert json.loads((out / "stats.json").read_text())["rows"] == {"sft": 4, "rl": 9, "validation": 3, "total": 16}
    summary = (out / "summary.md").read_text()
    assert "Spearman" in summary and "| sft | 4 |" in summary and "![gallery](gallery.png)" in summary
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_counts_per_degradation_and_stage_match_the_rows(ds):
    root, stats = ds
    rows = _all_rows(root)
    images = Counter(n for r in rows for n in {d["name"] for d in r["degradations"]})
    stages = Counter(d["stage"] for r in rows for d in r["degradations"])
    assert {k: v["images"] for k, v in stats["per_degradation"].items() if v["images"]} == dict(images)
    assert len(stats["per_degradation"]) == 16  # every catalogue entry, drawn or not
    assert {k: v for k, v in stats["per_stage"].items() if v} == dict(stages)
    per_image = [len(r["degradations"]) for r in rows]
    assert stats["degradations_per_image"]["mean"] == pytest.approx(np.mean(per_image))
    assert stats["errors"] == {"total": 1, "by_stage": {"load": 1}}


def _rank(a):
    a = np.asarray(a, float)
    order = a.argsort()
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a))
    for v in np.unique(a):  # ties: average rank
        ranks[a == v] = ranks[a == v].mean()
    return ranks


def test_spearman_is_the_rank_correlation_of_length_and_total_intensity(ds):
    root, stats = ds
    rows = _all_rows(root)
    x = [r["total_intensity"] for r in rows]
    y = [len(r["reasoning"].split()) for r in rows]
    expected = np.corrcoef(_rank(x), _rank(y))[0, 1]
    assert stats["spearman_length_vs_intensity"] == pytest.approx(expected, abs=1e-9)
    assert stats["spearman"]["reasoning_words"] > 0.9  # the fixture's chains grow with the damage
    assert report.spearman([1, 2, 3, 4], [10, 20, 15, 40]) == pytest.approx(0.8)
    assert np.isnan(report.spearman([1, 2], [3, 4])) and np.isnan(report.spearman([1, 1, 1], [1, 2, 3]))


def test_shrinking_chains_give_a_negative_rho_and_the_summary_says_so(tmp_path):
    root = make_dataset(tmp_path / "ds", n_sft=2, n_rl=6, n_val=0, lengths="shrink")
    stats = report.make_report(root, gallery_size=2)
    assert stats["spearman_length_vs_intensity"] < -0.9
    assert "Negative" in (root / "report" / "summary.md").read_text()
    assert stats["rows"] == {"sft": 2, "rl": 6, "total": 8}


def test_gallery_decodes_only_the_samples_it_shows(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "ds", n_sft=5, n_rl=15, n_val=0)
    calls = []
    real = report._decode_thumbnail
    monkeypatch.setattr(report, "_decode_thumbnail", lambda data, size=256: calls.append(1) or real(data, size))
    stats = report.make_report(root, tmp_path / "elsewhere")
    assert len(calls) == 12 == len(stats["gallery"])
    totals = [g["total_intensity"] for g in stats["gallery"]]
    assert totals == sorted(totals)  # spread over the intensity range, lightest first
    by_id = {r["id"]: r["type"] for r in _all_rows(root)}
    assert all(g["type"] == by_id[g["id"]] for g in stats["gallery"])  # the TYPE line shown is the row's
    assert (tmp_path / "elsewhere" / "gallery.png").is_file() and not (root / "report").exists()


def test_statistics_never_read_the_image_column(ds):
    root, _ = ds
    frame = report.load_frame(root)
    assert "image" not in frame.columns and frame.height == 16
    assert set(frame["config"].unique()) == {"sft", "rl", "validation"}


def test_rerun_replaces_files_atomically(ds, monkeypatch):
    root, _ = ds
    target = root / "report" / "stats.json"
    target.write_text("stale")
    report.make_report(root)
    assert json.loads(target.read_text())["rows"]["total"] == 16
    # a failure while writing leaves the previous file intact and no temporary file behind
    monkeypatch.setattr(report, "summary_markdown", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    before = (root / "report" / "summary.md").read_bytes()
    with pytest.raises(OSError):
        report.make_report(root)
    assert (root / "report" / "summary.md").read_bytes() == before
    assert not [p for p in (root / "report").iterdir() if p.name.startswith(".")]


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        report.make_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="robust-r1 build"):
        report.make_report(tmp_path / "empty")


def test_cli_report_prints_rho_and_refreshes_the_card(tmp_path):
    import typer
    from typer.testing import CliRunner

    root = make_dataset(tmp_path / "ds", n_sft=2, n_rl=4, n_val=1)
    app = typer.Typer()
    dataset_cli.register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    res = CliRunner().invoke(app, ["report", str(root)])
    assert res.exit_code == 0, res.output
    assert "Spearman rho" in res.output and (root / "report" / "gallery.png").is_file()
    assert "![gallery](report/gallery.png)" in (root / "README.md").read_text()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such folder" in res.output
