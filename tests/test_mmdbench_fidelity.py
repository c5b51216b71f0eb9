"""bench/mmdbench_fidelity.py on a small synthetic MMD-Bench copy in the real file layout.

The synthetic copy's per-degradation files are rendered by our own engine (``_bench_layouts``), so
a faithful check must report agreement on them, and disagreement when a file holds another
degradation than its name says."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from _bench_layouts import make_mmdbench

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("mmdbench_fidelity", ROOT / "bench" / "mmdbench_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fid():
    return _script()


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmd")
    path, _ = make_mmdbench(root, methods=("lens_blur", "dark_illumination", "gaussian_noise"), bases=("MMStar",))
    return path


def test_matched_on_the_same_base_images_our_own_renders_agree(fid, copy):
    report = fid.run(copy, "MMStar", None, limit=50, seeds=[0, 1], style="default",
                     methods=["lens_blur", "dark_illumination", "graffiti"])
    by = {r["method"]: r for r in report["results"]}
    assert report["clean"].endswith("MMStar.tsv")
    assert by["graffiti"]["mode"] == "missing"
    for m in ("lens_blur", "dark_illumination"):
        r = by[m]
        assert r["mode"] == "matched" and r["images"] == 6
        assert all(c["agree"] for c in r["cells"].values()), (m, r["cells"])
    assert by["dark_illumination"]["cells"]["brightness"]["theirs"] < 0.5  # the statistics measure the damage
    assert by["lens_blur"]["cells"]["log10_sharpness"]["theirs"] < -0.3
    assert by["lens_blur"]["ssim_ours_vs_theirs"] > 0.9
    md = fid.markdown(report)
    assert "| lens_blur | 6 |" in md and "10 of 10 cells agree." in md and "No file for: graffiti." in md


def test_a_file_holding_another_degradation_is_reported_as_disagreeing(fid, copy, tmp_path):
    d = tmp_path / "swapped"
    shutil.copytree(copy, d)
    shutil.copy(d / "MMStar_gaussian_noise.tsv", d / "MMStar_lens_blur.tsv")  # noise published under lens blur's name
    report = fid.run(d, "MMStar", None, limit=50, seeds=[0], style="default", methods=["lens_blur"])
    cells = report["results"][0]["cells"]
    assert not cells["log10_sharpness"]["agree"] and cells["log10_sharpness"]["theirs"] > 0 > cells[
        "log10_sharpness"]["ours"]


def test_without_the_clean_file_only_no_reference_statistics_are_compared(fid, tmp_path):
    path, _ = make_mmdbench(tmp_path, methods=("dark_illumination",), bases=("MMStar",), with_clean=False)
    report = fid.run(path, "MMStar", None, limit=4, seeds=[0], style="default", methods=["dark_illumination"])
    (r,) = report["results"]
    assert r["mode"] == "unmatched" and r["images"] == 4 and set(r["cells"]) == set(fid.NO_REFERENCE)
    assert "Unmatched (no clean image)" in fid.markdown(report)


def test_the_command_line_writes_the_report_and_names_the_style_it_used(fid, copy, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert fid.main([str(copy), "--methods", "lens_blur", "--seeds", "0", "--limit", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["results"][0]["images"] == 2
    assert report["style"].startswith("reference") or "reference style is not merged" in report["style"]
    assert "style:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        fid.main([str(tmp_path / "nowhere")])
