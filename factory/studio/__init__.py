"""Robust-R1 Studio: a Gradio app to see the damage, the reasoning chain and the model's reading.

Four tabs: **Degrade** (bundled photo or upload → chosen degradations or a drawn recipe → the
degraded image beside the clean one, TYPE, recipe JSON, a strip across intensities, downloads),
**Chain** (question, options, answer → the chain from the template or an OpenAI-compatible
backend, target length and blocks), **Dataset** (open a built dataset, filter rows, see a row and
the report's plots) and **Model** (ask a model about a degraded image; its TYPE is compared with
the truth and its answer marked right or wrong).

``robust-r1 studio`` / ``python -m factory.studio`` start it; ``app.py`` at the repository root
runs it as a Hugging Face Space. gradio is imported only by :func:`build_app` and :func:`launch`.
"""

from __future__ import annotations

from .app import Studio, StudioConfig, build_app, launch

__all__ = ["Studio", "StudioConfig", "build_app", "launch"]
