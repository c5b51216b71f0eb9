"""Robust-R1 Studio: the Gradio app (four tabs: Degrade, Chain, Dataset, Model).

::

    from factory.studio import StudioConfig, build_app, launch
    launch(StudioConfig(dataset="demo-output", model="tiny", workdir="studio-output"))
    demo = build_app(StudioConfig())           # a gr.Blocks, e.g. to mount or to test

Everything the studio writes goes under ``workdir``: uploads and served files (gradio's temporary
folder is pointed there), degraded images and recipes, contact sheets, datasets and models
downloaded from the Hub, reports, the chain cache. The server binds 127.0.0.1 unless ``host``
says otherwise; a public share link only with ``share=True``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from factory.errors import ConfigError

from .common import Workdir
from .context import Studio, StudioConfig

log = logging.getLogger("robust_r1.studio")

TITLE = "Robust-R1 Studio"
CSS = """
#degrade-type textarea, #model-type textarea, #dataset-type textarea, #chain-type textarea {
  font-family: ui-monospace, monospace;
}
footer { display: none !important; }
"""


def prepare_environment(workdir: Workdir) -> None:
    """Point gradio's temporary folder (and matplotlib's cache) into the work folder; no telemetry."""
    os.environ["GRADIO_TEMP_DIR"] = str(workdir.folder(".gradio"))
    # matplotlib (pulled in by pandas/gradio for some outputs) keeps its font cache here too,
    # unless the user chose a folder for it.
    os.environ.setdefault("MPLCONFIGDIR", str(workdir.folder(".cache", "matplotlib")))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _theme() -> Any:
    import gradio as gr

    # System fonts: the page loads nothing from the internet (works offline and on closed networks).
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def header_markdown(studio: Studio) -> str:
    cfg = studio.cfg
    bits = [f"work folder `{studio.workdir.root}`"]
    if cfg.dataset:
        bits.append(f"dataset `{cfg.dataset}`")
    if cfg.endpoint:
        bits.append(f"endpoint `{cfg.endpoint}`")
    elif cfg.model:
        bits.append(f"model `{cfg.model}`")
    return f"## {TITLE}\nSee the damage, the reasoning chain and the model's reading side by side. " + " · ".join(bits)


def build_app(config: StudioConfig | Studio | None = None) -> Any:
    """The studio as a ``gr.Blocks`` (not launched). Loading of ``config.model`` is not started
    here (see :func:`launch`), so building stays fast."""
    studio = config if isinstance(config, Studio) else Studio(config or StudioConfig())
    prepare_environment(studio.workdir)
    import gradio as gr

    from . import chain_tab, dataset_tab, degrade_tab, model_tab

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(studio), elem_id="studio-header")
        row = gr.State(None)
        with gr.Tabs(selected="degrade", elem_id="studio-tabs") as tabs:
            with gr.Tab("Degrade", id="degrade", elem_id="tab-degrade"):
                shared = degrade_tab.build(studio)
            shared.update({"row": row, "tabs": tabs})
            with gr.Tab("Chain", id="chain", elem_id="tab-chain"):
                chain_tab.build(studio, shared)
            with gr.Tab("Dataset", id="dataset", elem_id="tab-dataset"):
                ds = dataset_tab.build(studio, shared)
            with gr.Tab("Model", id="model", elem_id="tab-model"):
                md = model_tab.build(studio, shared)
        for hook in (ds["load"], md["load"]):
            if hook is not None:
                demo.load(*hook)
    demo.studio = studio  # type: ignore[attr-defined]
    return demo


def launch(config: StudioConfig, *, block: bool = True, quiet: bool = False) -> Any:
    """Build the app, serve it, then start loading the model in the background.

    Returns the ``gr.Blocks`` (already serving) when ``block`` is False; else serves until Ctrl-C.
    """
    studio = Studio(config)
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=2)
    try:
        demo.launch(
            server_name=config.host,
            server_port=config.port,
            share=bool(config.share),
            allowed_paths=[str(studio.workdir.root)],
            max_file_size=f"{int(config.max_file_mb)}mb",
            show_error=True,
            quiet=True,
            prevent_thread_lock=True,
            footer_links=[],
            theme=_theme(),
            css=CSS,
        )
    except OSError as exc:
        raise ConfigError(
            "port",
            f"cannot serve on {config.host}:{config.port or '7860+'} ({exc})",
            value=config.port,
            fix="choose a free port",
        ) from None
    url = demo.local_url
    if not quiet:
        print(f"{TITLE} on {url} (work folder: {studio.workdir.root})", flush=True)
        if getattr(demo, "share_url", None):
            print(f"public link (anyone with it can use the studio): {demo.share_url}", flush=True)
    if config.model or config.endpoint:
        studio.model.start(config.model, config.endpoint)
    if not block:
        return demo
    try:
        demo.block_thread()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        demo.close()
    return demo


def setup_logging() -> None:
    """INFO logs on stderr (unless logging is configured already); HTTP client chatter muted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main_from_env() -> None:  # pragma: no cover - the Space entry point (app.py)
    setup_logging()
    launch(StudioConfig.from_env())


__all__ = ["Studio", "StudioConfig", "build_app", "launch"]
