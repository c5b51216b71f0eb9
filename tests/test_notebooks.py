"""The Colab notebooks (notebooks/*.ipynb): committed clean, and running top to bottom on the CPU.

Every notebook is executed with papermill in SMOKE mode (tiny model, tiny data) in a fresh
``python3`` kernel of this interpreter, in its own temporary WORK_DIR, so the notebooks run in any
order and in parallel (``pytest -n 2``). A notebook added to notebooks/ is picked up automatically.

Conventions the tests hold every notebook to (see docs/notebooks.md):

* the first cell is a markdown "Open in Colab" badge linking to the notebook itself;
* the first code cell is the install cell: it starts with the ``PACKAGE_SOURCE`` parameter,
  installs on Colab without replacing Colab's torch (everything that depends on torch pinned and
  ``--no-deps``), otherwise only checks the import and prints the interpreter's ``sys.prefix``;
* exactly one code cell is tagged ``parameters`` and sets ``SMOKE = False`` (papermill injects
  ``SMOKE=True`` and ``WORK_DIR`` after it);
* a code cell tagged ``image-output`` must display at least one image;
* no outputs or execution counts are committed.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_URL = "https://colab.research.google.com/github/robust-r1/robust-r1/blob/main/notebooks/{name}"
GIT_PACKAGE = "git+https://github.com/robust-r1/robust-r1"
IMAGE_TAG = "image-output"
MIN_IMAGES = {
    "01_build_dataset.ipynb": 1 + 5,  # the degradation gallery + the five report plots
    "02_sft.ipynb": 1,  # the image next to its parsed chain
    "03_grpo.ipynb": 1,  # the reward curves
    "04_evaluate.ipynb": 3,  # the levels of one image, the comparison plot, the per-stage bars
}
"""Images the executed notebook must hold at least; any other notebook must show one."""

ids = [p.name for p in NOTEBOOKS]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=nbformat.NO_CONVERT)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _python(source: str) -> ast.Module:
    """Parse a code cell as IPython would run it (magics turned into Python first)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


def test_there_are_notebooks():
    assert {"01_build_dataset.ipynb", "02_sft.ipynb", "03_grpo.ipynb", "04_evaluate.ipynb"} <= set(ids)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_clean_and_follows_the_conventions(path: Path):
    nb = _read(path)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "papermill" not in nb.metadata, f"{path.name}: an executed notebook was saved over the source"

    first = nb.cells[0]
    assert first.cell_type == "markdown" and BADGE_IMG in first.source, f"{path.name}: no Colab badge in the first cell"
    assert COLAB_URL.format(name=path.name) in first.source, f"{path.name}: the badge does not open {path.name}"

    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
            f"{path.name}: code cell {i} has outputs or an execution count committed; strip them "
            "(see docs/notebooks.md)"
        )
        _python(cell.source)  # every cell is valid (I)Python
    for i, cell in enumerate(nb.cells):
        left = {"papermill", "execution"} & set(cell.get("metadata", {}))
        assert not left, f"{path.name}: cell {i} keeps run metadata {sorted(left)}; strip it (see docs/notebooks.md)"

    install = code[0].source
    for needle in ('"google.colab" in sys.modules', GIT_PACKAGE, "import factory", "import trainers", "sys.prefix"):
        assert needle in install, f"{path.name}: the first code cell is not the install cell (no {needle!r})"
    assert "parameters" not in _tags(code[0])
    top = _python(install).body[0]
    assert isinstance(top, ast.Assign) and top.targets[0].id == "PACKAGE_SOURCE", (
        f"{path.name}: the install cell must start with the PACKAGE_SOURCE parameter"
    )

    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in _tags(c)]
    assert not injected, f"{path.name}: cells {injected} are papermill's injected parameters; strip them"
    params = [c for c in nb.cells if "parameters" in _tags(c)]
    assert len(params) == 1, f"{path.name}: {len(params)} cells tagged 'parameters', expected exactly 1"
    assert params[0].cell_type == "code"
    assigned = {
        t.id: node.value
        for node in _python(params[0].source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert "SMOKE" in assigned, f"{path.name}: the parameters cell does not set SMOKE"
    smoke = assigned["SMOKE"]
    assert isinstance(smoke, ast.Constant) and smoke.value is False, "SMOKE must default to False (the Colab run)"
    assert "WORK_DIR" in assigned, f"{path.name}: the parameters cell does not set WORK_DIR"
    drive = assigned.get("KEEP_ON_DRIVE")
    assert isinstance(drive, ast.Constant) and drive.value is False, f"{path.name}: no KEEP_ON_DRIVE = False parameter"
    assert nb.cells.index(params[0]) > nb.cells.index(code[0]), "the parameters cell must follow the install cell"


TORCH_STACK = {"torch", "torchvision", "torchaudio", "triton"}
"""Colab's own: never installed by a notebook."""
NEEDS_TORCH = {"trl", "peft", "accelerate", "unsloth", "unsloth-zoo", "bitsandbytes", "cut-cross-entropy", "xformers",
               "torchao"}
"""Packages whose dependencies include torch: installed with --no-deps so no resolve replaces Colab's torch."""


def _install_namespace(path: Path) -> dict:
    """Run a notebook's install cell here (not on Colab it installs nothing) and return its names."""
    ns: dict = {"__name__": "install_cell"}
    exec(compile(_python(_read(path).cells[[c.cell_type for c in _read(path).cells].index("code")].source),
                 str(path), "exec"), ns)
    return ns


def _spec_name(spec: str) -> str:
    import re

    return re.split(r"[<>=!~ @\[]", spec, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_install_cell_keeps_colabs_torch_and_pins_what_depends_on_it(path: Path, capsys):
    """The install plan the cell would run on Colab, for a few Colab torch versions, with and
    without a GPU: pinned versions, --no-deps for everything that depends on torch, torch untouched,
    Unsloth only on a GPU, the pins inside pyproject.toml's bounds (issue 12)."""
    import tomllib
    from packaging.requirements import Requirement

    ns = _install_namespace(path)
    assert "(prefix " in capsys.readouterr().out
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    bounds = {Requirement(r).name.lower().replace("_", "-"): Requirement(r).specifier
              for r in extras["train"] + extras["unsloth"] + tomllib.loads((ROOT / "pyproject.toml").read_text())[
                  "project"]["dependencies"]}
    for name, version in ns["PINS"].items():
        key = name.lower().replace("_", "-")
        if key in bounds:
            assert version in bounds[key], f"{path.name}: {name}=={version} is outside pyproject's {bounds[key]}"
    for torch_version, gpu in (("2.9.0+cu126", True), ("2.10.0+cu128", True), ("2.12.1+cu130", True), ("2.9.0", False)):
        plan = ns["install_plan"](torch_version, gpu)
        assert plan[0] and plan[0][0].endswith(ns["PACKAGE_SOURCE"])
        specs = [(cmd, a) for cmd in plan for a in cmd if not a.startswith("-")]
        names = {_spec_name(a) for _, a in specs}
        assert not names & TORCH_STACK, f"{path.name}: installs {names & TORCH_STACK}"
        for cmd, a in specs:
            if _spec_name(a) in NEEDS_TORCH:
                assert "--no-deps" in cmd, f"{path.name}: {a} would resolve torch ({cmd})"
                assert any(op in a for op in ("==", ">=")), f"{path.name}: {a} is not pinned"
        if not ns["TRAINING_STACK"]:
            assert len(plan) == 1
            continue
        assert {"transformers", "trl", "peft", "accelerate"} <= names
        assert ("unsloth" in names) is gpu and ("unsloth-zoo" in names) is gpu
        if gpu:
            assert f"unsloth=={ns['PINS']['unsloth']}" in [a for _, a in specs]
    if ns["TRAINING_STACK"]:  # the GPU path imports unsloth in the install cell, before trl/transformers/peft
        assert "import unsloth" in _read(path).cells[[c.cell_type for c in _read(path).cells].index("code")].source
    else:
        assert path.name == "01_build_dataset.ipynb"


def test_notebooks_share_one_install_cell():
    cells = {p.name: next(c for c in _read(p).cells if c.cell_type == "code").source for p in NOTEBOOKS}
    norm = {n: s.replace("TRAINING_STACK = True", "TRAINING_STACK = X").replace("TRAINING_STACK = False", "X")
            .replace("TRAINING_STACK = X", "X") for n, s in cells.items()}
    assert len(set(norm.values())) == 1, "the install cells differ beyond TRAINING_STACK; copy one into the others"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_top_to_bottom_in_smoke_mode(path: Path, tmp_path: Path, monkeypatch):
    papermill = pytest.importorskip("papermill")

    # The kernel inherits this environment: no network, no secrets, a datasets cache of its own
    # (datasets caches a local folder by its name), and matplotlib's inline backend.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets-cache"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    if not Path("/dev/nvidia0").exists():
        assert os.environ.get("TRITON_INTERPRET") == "1"  # set by conftest.py, inherited by the kernel

    out = tmp_path / path.name
    start = time.perf_counter()
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters={"SMOKE": True, "WORK_DIR": str(tmp_path / "work")},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=600,
    )
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s in SMOKE mode")

    nb = _read(out)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the kernel was this interpreter's environment (papermill's python3 kernel = sys.executable)
    assert f"(prefix {sys.prefix})" in _text(code[0]), _text(code[0])
    missing = [i for i, c in enumerate(code) if IMAGE_TAG in _tags(c) and not _images(c)]
    assert not missing, f"{path.name}: code cells {missing} are tagged {IMAGE_TAG!r} but showed no image"
    images = sum(_images(c) for c in code)
    assert images >= MIN_IMAGES.get(path.name, 1), f"{path.name}: {images} images in the executed notebook"
    # the source notebook is untouched (still clean)
    assert all(c.get("outputs") == [] for c in _read(path).cells if c.cell_type == "code")
    if path.name == "03_grpo.ipynb":
        text = "".join(_text(c) for c in code)
        assert "rewards logged: r_deg, r_len, accuracy, format" in text
    if path.name == "04_evaluate.ipynb":
        text = "".join(_text(c) for c in code)
        assert text.count("16 answers generated, 0 already done, 0 failed") == 2  # tuned + base, 4 questions x 4 levels
        tables = "".join(o.get("data", {}).get("text/markdown", "") for c in code for o in c.get("outputs", []))
        assert "| fine-tuned (robust prompt) |" in tables and "| base (plain prompt) |" in tables
