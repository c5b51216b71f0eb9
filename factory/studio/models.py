"""The model behind the Model tab (a transformers model or an OpenAI-compatible endpoint) and how
its answer is judged against the truth: each true degradation named or missed, with the error of
its stated intensity; extra names; the answer right or wrong.

torch and transformers are imported only when a transformers model is loaded, in a background
thread, so the studio starts (and serves its other tabs) at once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from factory.chains.format import parse_chain, parse_type

from .common import StudioError, Workdir, resolve_answer, slug

log = logging.getLogger("robust_r1.studio")

TINY = "tiny"
"""Model name that builds the tiny offline test model (random weights)."""


# ---------------------------------------------------------------- judging an answer


def compare_types(type_text: str | None, truth: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Compare a model's ``<TYPE>`` block with the degradations that were really applied.

    Returns ``rows`` (one per true degradation: ``named`` or ``missed``, the stated intensity
    closest to the truth and its absolute error after clamping to [0, 1]; then one per extra
    name: ``extra`` for a catalogue degradation that was not applied, ``unknown`` for a name
    outside the catalogue), the counts and the mean intensity error. A clean image (no truth) is
    read correctly when the block names nothing (e.g. ``none``).
    """
    pred = parse_type(type_text) if type_text else []
    by_name: dict[str, list[float]] = {}
    known: dict[str, bool] = {}
    for p in pred:
        by_name.setdefault(p.name, []).append(float(p.intensity))
        known[p.name] = p.known
    rows: list[dict[str, Any]] = []
    errors: list[float] = []
    truth_names = set()
    for name, s in truth:
        truth_names.add(name)
        said = [v for v in by_name.get(name, []) if math.isfinite(v)]
        if name in by_name:
            best = min(said, key=lambda v: abs(min(1.0, max(0.0, v)) - s)) if said else None
            err = abs(min(1.0, max(0.0, best)) - s) if best is not None else None
            if err is not None:
                errors.append(err)
            rows.append({"degradation": name, "truth": s, "predicted": best, "verdict": "named", "error": err})
        else:
            rows.append({"degradation": name, "truth": s, "predicted": None, "verdict": "missed", "error": None})
    for name, vals in by_name.items():
        if name in truth_names:
            continue
        finite = [v for v in vals if math.isfinite(v)]
        rows.append(
            {
                "degradation": name,
                "truth": None,
                "predicted": finite[0] if finite else None,
                "verdict": "extra" if known.get(name) else "unknown",
                "error": None,
            }
        )
    named = sum(r["verdict"] == "named" for r in rows)
    return {
        "has_type": type_text is not None and bool(str(type_text).strip()),
        "rows": rows,
        "named": named,
        "missed": sum(r["verdict"] == "missed" for r in rows),
        "extra": sum(r["verdict"] in ("extra", "unknown") for r in rows),
        "truth": len(truth),
        "mae": sum(errors) / len(errors) if errors else None,
        "clean_ok": (not truth and not by_name) if type_text is not None else None,
    }


def type_summary(cmp: dict[str, Any]) -> str:
    if not cmp["has_type"]:
        return "no `<TYPE>` block: the model named no damage"
    if cmp["truth"] == 0:
        return (
            "clean image: the model named no damage ✔"
            if cmp["clean_ok"]
            else f"clean image, but the model named {cmp['extra']} degradation(s) ✘"
        )
    s = f"named {cmp['named']} of {cmp['truth']} · missed {cmp['missed']} · extra {cmp['extra']}"
    if cmp["mae"] is not None:
        s += f" · mean intensity error {cmp['mae']:.2f}"
    return s


def judge_answer(text: str, answer: str | None, choices: Sequence[str]) -> dict[str, Any]:
    """Whether the model's answer is right: ``{"predicted", "picked", "correct"}`` (``correct`` is
    None when no truth is given). Uses the rewards' answer matching (index, letter, option text, ...)."""
    from factory.chains.answers import normalize_choice, score_answer

    parsed = parse_chain(text)
    pred = parsed.answer if parsed.answer is not None and parsed.answer.strip() else text
    picked = normalize_choice(pred, list(choices)) if choices else None
    if answer is None or not str(answer).strip():
        return {"predicted": pred.strip(), "picked": picked, "correct": None}
    if choices:
        truth, _ = resolve_answer(answer, list(choices))
        score = score_answer(pred, truth, list(choices))
    else:
        score = score_answer(pred, answer, [])
    return {"predicted": pred.strip(), "picked": picked, "correct": score >= 1.0, "score": score}


# ---------------------------------------------------------------- the model


def served_models(base_url: str, timeout: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server lists at ``GET {base_url}/models``."""
    import os
    import urllib.request

    url = base_url.rstrip("/") + "/models"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own server
            data = json.loads(resp.read().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001
        raise StudioError(
            f"endpoint {base_url}: cannot list its models ({type(exc).__name__}: {exc}); "
            "check the URL (it ends in /v1) or give the model name."
        ) from None
    names = [str(m.get("id")) for m in (data.get("data") or []) if isinstance(m, dict) and m.get("id")]
    if not names:
        raise StudioError(f"endpoint {base_url}: it lists no models; give the model name.")
    return names


class ModelHolder:
    """One model for the whole studio, loaded in a background thread; generation is serialised."""

    def __init__(self, workdir: Workdir):
        self.workdir = workdir
        self._lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._ready = threading.Event()
        self._ready.set()
        self.state = "none"
        self.kind: str | None = None
        self.name: str | None = None
        self.endpoint: str | None = None
        self.error: str | None = None
        self.seconds: float | None = None
        self._predictor: Any = None
        self._generation = 0

    # -------------------------------------------------------------- loading

    def start(self, model: str | None, endpoint: str | None = None) -> None:
        """Begin loading (returns at once). ``endpoint`` → an OpenAI-compatible server; ``model``
        is then the served name (default: the first it lists)."""
        model = (model or "").strip() or None
        endpoint = (endpoint or "").strip() or None
        if not model and not endpoint:
            raise StudioError("model: give a model folder, a Hub id or 'tiny', or an endpoint URL.")
        with self._lock:
            if self.state == "loading":
                raise StudioError(f"model {self.name or self.endpoint} is still loading; wait for it first.")
            self._generation += 1
            gen = self._generation
            self.state, self.error, self.seconds = "loading", None, None
            self.kind = "endpoint" if endpoint else "transformers"
            self.name, self.endpoint = model, endpoint
            self._predictor = None
            self._ready.clear()
        threading.Thread(target=self._load, args=(gen, model, endpoint), name="studio-model", daemon=True).start()

    def _load(self, gen: int, model: str | None, endpoint: str | None) -> None:
        t0 = time.perf_counter()
        try:
            if endpoint:
                name = model or served_models(endpoint)[0]
                from trainers.eval.models import EndpointModel

                EndpointModel(name, endpoint)  # checks the key/model name now
                predictor: Any = ("endpoint", name, endpoint)
            else:
                name = model
                from trainers.infer import Predictor

                predictor = Predictor(self._local(model))
            with self._lock:
                if gen != self._generation:
                    return
                self._predictor, self.name, self.state = predictor, name, "ready"
                self.seconds = time.perf_counter() - t0
            log.info("studio: model %s ready (%s) in %.1f s", name, self.kind, self.seconds)
        except Exception as exc:  # noqa: BLE001 - shown in the page
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            with self._lock:
                if gen != self._generation:
                    return
                self.state, self.error = "error", msg
            log.warning("studio: model %s failed to load: %s", model or endpoint, msg)
        finally:
            if gen == self._generation:
                self._ready.set()

    def _local(self, model: str) -> str:
        """A local path for ``model``: ``tiny`` and folders as they are; a Hub id is downloaded
        into the work folder (``WORKDIR/hub/models/<id>``)."""
        if model == TINY or Path(model).expanduser().exists():
            return str(Path(model).expanduser()) if model != TINY else TINY
        from .datasets import HUB_ID

        if not HUB_ID.fullmatch(model):
            raise StudioError(f"model {model}: no such folder, and not a Hub id (user/name).")
        from huggingface_hub import snapshot_download

        dest = self.workdir.path("hub", "models", slug(model.replace("/", "--"), 120))
        try:
            snapshot_download(repo_id=model, local_dir=str(dest))
        except Exception as exc:  # noqa: BLE001
            raise StudioError(
                f"model {model}: could not download it from the Hub ({type(exc).__name__}: {str(exc)[:300]})."
            ) from None
        return str(dest)

    def wait(self, timeout: float | None = None, progress: Callable[[float, str], Any] | None = None) -> None:
        """Block until the model is loaded; raise a :class:`StudioError` when it failed."""
        if not self._ready.is_set() and progress is not None:
            progress(0.05, f"waiting for {self.name or self.endpoint} to load")
        if not self._ready.wait(timeout):
            raise StudioError("the model is still loading; try again in a moment.")
        if self.state == "none":
            raise StudioError("no model: give a model folder, Hub id or 'tiny' (or an endpoint) and press Load.")
        if self.state == "error":
            raise StudioError(f"the model could not be loaded: {self.error}")

    def describe(self) -> str:
        if self.state == "none":
            return "no model loaded: give a model folder, Hub id or `tiny`, or an endpoint, and press **Load**"
        what = f"`{self.name}`" + (f" at {self.endpoint}" if self.endpoint else "")
        if self.state == "loading":
            return f"loading {what} …"
        if self.state == "error":
            return f"⚠ **Error:** {what} could not be loaded: {self.error}"
        where = "OpenAI-compatible endpoint" if self.kind == "endpoint" else "transformers"
        return f"✔ {what} ready ({where}, loaded in {self.seconds:.1f} s)"

    # -------------------------------------------------------------- asking

    def generate(self, image: np.ndarray, prompt: str, *, max_new_tokens: int = 512) -> str:
        self.wait(timeout=600)
        pred = self._predictor
        if isinstance(pred, tuple):
            from trainers.eval.models import EndpointModel

            _, name, base = pred
            out = EndpointModel(name, base, max_new_tokens=int(max_new_tokens), concurrency=1).generate(
                [image], [prompt]
            )[0]
            if isinstance(out, Exception):
                raise StudioError(f"endpoint {base}: {out}")
            return out.text
        with self._gen_lock:
            return pred.generate([image], [prompt], max_new_tokens=int(max_new_tokens))[0]
