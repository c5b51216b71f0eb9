"""The extension route CONTRIBUTING.md documents for a 17th degradation, run as written.

The degradation catalogue is process-global (no unregister), so the new entry is registered in a
fresh interpreter; it reports what every consumer made of it as JSON and the assertions run here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# CONTRIBUTING.md's "Adding a degradation" example (one function registered for both styles, as
# for a degradation the reference code lacks), as a plug-in module.
PLUGIN = textwrap.dedent(
    """
    import cv2
    import numpy as np

    from factory.degrade.registry import Influence, Param, register

    VIGNETTING_WORDS = Influence(
        {
            "low": ("the corners fall slightly darker than the centre",),
            "medium": ("a clear dark vignette closes in on the edges of the frame",),
            "high": ("the edges sink into darkness and only the centre stays lit",),
        },
        hides="detail near the edges and corners",
        keeps="the centre of the frame and its colours",
    )


    def vignetting(img, s, p, rng):
        h, w = img.shape[:2]
        x = ((2 * np.arange(w, dtype=np.float32) - (w - 1)) / w) ** 2
        y = ((2 * np.arange(h, dtype=np.float32) - (h - 1)) / h) ** 2
        r = np.minimum((y[:, None] + x[None, :]) / 2, 1.0)
        gain = 1.0 - p["strength"] * r ** p["falloff"]
        return cv2.multiply(img, cv2.merge([gain] * 3), dtype=cv2.CV_8U)


    for style in ("physical", "reference"):
        register(
            "vignetting",
            stage="acquisition",
            style=style,
            aliases=("vignette", "dark corners"),
            params={
                "strength": Param(0.0, 0.9, 1.0, "darkening at the corners"),
                "falloff": Param(1.5, 1.5, 1.0, "exponent of the radius"),
            },
            random=False,
            description="Lens vignetting: the picture darkens towards its corners.",
            influence=VIGNETTING_WORDS,
        )(vignetting)
    """
)

PROBE = textwrap.dedent(
    """
    import contextlib, io, json
    import numpy as np
    from factory import degrade
    import vignetting_plugin  # noqa: F401  (registers the 17th degradation)
    from factory.chains import parse_chain
    from factory.chains.writer import ChainConfig, ChainRequest, write_chains
    from factory.photos import photo
    from trainers.rewards import degradation_reward

    img = degrade.to_rgb_uint8(photo("astronaut"))[::4, ::4].copy()
    out = {"names": degrade.names()}
    out["identity_at_0"] = all(
        np.array_equal(degrade.apply(img, "vignetting", 0.0, seed=0, style=s), img) for s in degrade.STYLES
    )
    out["changed"] = [
        float((degrade.apply(img, "vignette", 0.45, seed=0, style=s) != img).mean()) for s in degrade.STYLES
    ]
    out["train_draws"] = sum(
        any(st.name == "vignetting" for st in degrade.sample_recipe("train", 0, f"s{i}").steps) for i in range(200)
    )
    out["eval_draws"] = sum(
        degrade.sample_recipe("eval", 0, f"q{i}", intensity=0.45).steps[0].name == "vignetting" for i in range(200)
    )
    recipe = degrade.sample_recipe("train", 0, "x", only=["vignetting"], intensity=0.8)
    req = ChainRequest("x", "What is it?", ["a dog", "a cat"], "1", "a cat", recipe)
    chain = write_chains([req], ChainConfig()).results[0]
    out["chain"] = {"ok": chain.ok, "type": chain.type, "influence": chain.influence}
    gt = [{"name": "vignetting", "stage": "acquisition", "intensity": 0.8, "params": "{}"}]
    tagged = (
        "<TYPE>{}<TYPE_END><INFLUENCE>i<INFLUENCE_END><REASONING>r<REASONING_END>"
        "<CONCLUSION>c<CONCLUSION_END><ANSWER>1<ANSWER_END>"
    )
    out["parsed"] = [p.name for p in parse_chain(tagged.format("Dark Corners(0.8)")).type_pairs]
    out["r_deg"] = [
        degradation_reward([tagged.format(t)], degradations=[gt])[0] for t in ("vignetting(0.8)", "lens blur(0.8)")
    ]
    import sys
    from factory.cli import main
    buf = io.StringIO()
    sys.argv = ["robust-r1", "degradations", "--json"]
    with contextlib.redirect_stdout(buf):
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
    out["cli"] = [d["name"] for d in json.loads(buf.getvalue())]
    print("RESULT " + json.dumps(out))
    """
)


def test_a_degradation_added_as_contributing_shows_flows_through_recipes_chains_rewards_and_cli(tmp_path):
    (tmp_path / "vignetting_plugin.py").write_text(PLUGIN, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])

    assert len(out["names"]) == 17 and "vignetting" in out["names"]
    assert out["identity_at_0"] is True
    assert all(share > 0.3 for share in out["changed"])  # every style renders it (alias accepted)
    assert out["train_draws"] > 0  # the train recipe draws it among the acquisition stage's
    assert out["eval_draws"] > 0  # and so does the one-degradation eval protocol
    chain = out["chain"]
    assert chain["ok"] and chain["type"] == "vignetting(0.80)"
    assert "only the centre stays lit" in chain["influence"]  # its own wording, high band
    assert out["parsed"] == ["vignetting"]  # an alias in <TYPE> reads as the canonical name
    assert out["r_deg"][0] == 1.0 and out["r_deg"][1] < 0
    assert "vignetting" in out["cli"] and len(out["cli"]) == 17


def test_the_engine_contract_tests_check_a_new_degradation(tmp_path):
    """The per-degradation tests of tests/test_degrade_ops.py parametrize over the catalogue: loaded
    as a pytest plug-in, the new entry is collected and must pass them (shape, identity at 0,
    input untouched, any size, seeded) like the 16."""
    (tmp_path / "vignetting_plugin.py").write_text(PLUGIN, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    args = ["-m", "pytest", "-p", "vignetting_plugin", "-p", "no:cacheprovider", "-q", "-o", "addopts="]
    args += [str(ROOT / "tests" / "test_degrade_ops.py"), "-k", "vignetting"]
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed >= 8 and "failed" not in proc.stdout  # every per-name case of both styles ran on it
