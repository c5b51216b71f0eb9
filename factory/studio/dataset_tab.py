"""The Dataset tab: open a built dataset (folder or Hub id), filter rows by degradation, stage,
config and total intensity, look at one row (image, degradations, the five blocks), see the
report's plots; build the demo dataset into the work folder with one click."""

from typing import TYPE_CHECKING, Any

from factory.chains.format import FIELDS

from .common import StudioError, display, guarded, slug
from .datasets import DatasetView, report_images, report_summary

if TYPE_CHECKING:  # pragma: no cover
    from .context import Studio

DEG_HEADERS = ["name", "stage", "intensity", "params"]


def row_outputs(view: DatasetView, config: str, sample_id: str) -> tuple:
    """(title markdown, image, degradations table, 5 blocks..., model-tab state) for one row."""
    import pandas as pd

    rec = view.row(config, sample_id)
    choices = rec["choices"]
    q = rec["question_text"]
    lines = [
        f"**{config} / {sample_id}** · total intensity {float(rec.get('total_intensity') or 0):.2f}"
        + (f" · target {rec['target_words']} reasoning words" if rec.get("target_words") else ""),
        f"**Q:** {q}",
    ]
    if choices:
        lines.append(
            "  \n".join(f"{i}. {c}" + (" ✔" if str(i) == str(rec.get("answer")) else "") for i, c in enumerate(choices))
        )
    else:
        lines.append(f"**A:** {rec.get('answer_text') or rec.get('answer')}")
    degs = pd.DataFrame(
        [
            [d["name"], d["stage"], d["intensity"], ", ".join(f"{k}={v}" for k, v in d["params"].items())]
            for d in rec["degradations"]
        ],
        columns=DEG_HEADERS,
    )
    handoff = {
        "label": f"{config}/{sample_id}",
        "image": rec["image"],
        "question": q,
        "choices": choices,
        "answer": str(rec.get("answer") or ""),
        "degradations": [(d["name"], float(d["intensity"])) for d in rec["degradations"]],
    }
    return (
        "\n\n".join(lines),
        display(rec["image"], 640),
        degs,
        *[rec["blocks"].get(f) or "" for f in FIELDS],
        handoff,
    )


def filtered(view: DatasetView, degs, stages, configs, lo, hi, text) -> tuple[str, Any, list[list[str]], Any]:
    rows = view.filter(
        degradations=degs or (), stages=stages or (), configs=configs or (), min_total=lo, max_total=hi, text=text or ""
    )
    table = view.table(rows)
    keys = [[c, i] for c, i in zip(table["config"], table["id"])]
    shown = "" if rows.height <= len(keys) else f" (the first {len(keys)} listed)"
    count = f"**{rows.height}** of {view.frame.height} rows match{shown}"
    return count, table, keys, rows


def opened(view: DatasetView) -> dict[str, Any]:
    """Everything the tab shows for a freshly opened dataset (no filter, the first row)."""
    a, b = view.intensity_range()
    a, b = float(int(a * 100) / 100), float(-int(-b * 100) / 100)
    b = max(b, a + 0.01)
    count, table, keys, _ = filtered(view, [], [], view.configs, None, None, "")
    rep = view.report_dir()
    return {
        "status": view.summary_markdown(),
        "key": str(view.path),
        "degradations": view.degradations,
        "stages": view.stages,
        "configs": view.configs,
        "range": (a, b),
        "count": count,
        "table": table,
        "keys": keys,
        "row": row_outputs(view, *keys[0]) if keys else None,
        "report": report_images(rep) if rep else [],
        "report_md": report_summary(rep) if rep else "no report in this folder: press *Make the report*",
    }


def preload(studio: "Studio") -> tuple[dict[str, Any] | None, str]:
    """Open ``--dataset`` while the page is built when it is a local folder (so the first page
    already lists it); a Hub id is opened by the page's load event instead (with progress)."""
    from pathlib import Path

    from .common import error_markdown

    spec = studio.cfg.dataset
    if not spec or not Path(spec).expanduser().exists():
        return None, ""
    try:
        return opened(studio.datasets.open(spec)), ""
    except Exception as exc:  # noqa: BLE001 - the page starts anyway and says why
        return None, error_markdown(
            str(exc) if isinstance(exc, ValueError) else f"unexpected {type(exc).__name__}: {exc}"
        )


def report_for(studio: "Studio", view: DatasetView, progress: Any = None) -> tuple[Any, str]:
    """The dataset's own ``report/`` when complete, else a new report written into the work folder
    (``WORKDIR/reports/<dataset>``; the dataset folder is never written to)."""
    from factory.report import make_report

    rep = view.report_dir()
    if rep is not None:
        return rep, f"the dataset's own report ({rep})"
    rep = studio.workdir.path("reports", slug(str(view.path).replace("/", "-"), 120))
    if progress is not None:
        progress(0.1, f"making the report of {view.label} in {rep}")
    make_report(view.path, rep)
    return rep, f"report written to {rep}"


def build(studio: "Studio", shared: dict[str, Any]) -> dict[str, Any]:
    import gradio as gr

    init, init_error = preload(studio)
    first = init or {}
    row0 = first.get("row") or (None,) * (4 + len(FIELDS))
    lo0, hi0 = first.get("range", (0.0, 1.0))
    ds_key = gr.State(first.get("key"))
    matches = gr.State(first.get("keys", []))
    row_state = gr.State(row0[-1])
    with gr.Row(equal_height=True):
        spec = gr.Textbox(
            studio.cfg.dataset or "",
            label="Dataset folder or Hub id",
            placeholder="demo-output  or  user/name",
            elem_id="dataset-spec",
            scale=4,
        )
        open_btn = gr.Button("Open", variant="primary", elem_id="dataset-open", scale=1)
        demo_btn = gr.Button("Build the demo dataset (into the work folder)", elem_id="dataset-build-demo", scale=2)
    status = gr.Markdown(first.get("status", init_error), elem_id="dataset-status")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            degs = gr.Dropdown(
                first.get("degradations", []),
                value=[],
                multiselect=True,
                label="Degradations (rows with all of them)",
                elem_id="dataset-degradations",
            )
            stages = gr.Dropdown(
                first.get("stages", []),
                value=[],
                multiselect=True,
                label="Stages (rows with a degradation of each)",
                elem_id="dataset-stages",
            )
            configs = gr.CheckboxGroup(
                first.get("configs", []), value=first.get("configs", []), label="Configs", elem_id="dataset-configs"
            )
            lo = gr.Slider(lo0, hi0, value=lo0, step=0.01, label="total intensity from", elem_id="dataset-min")
            hi = gr.Slider(lo0, hi0, value=hi0, step=0.01, label="total intensity to", elem_id="dataset-max")
            text = gr.Textbox("", label="Search (question, TYPE or id)", elem_id="dataset-search")
        with gr.Column(scale=3):
            count = gr.Markdown(first.get("count", ""), elem_id="dataset-count")
            table = gr.Dataframe(
                first.get("table"),
                headers=["config", "id", "total_intensity", "n", "type", "question"],
                interactive=False,
                max_height=300,
                wrap=False,
                elem_id="dataset-table",
            )
    with gr.Row():
        image = gr.Image(
            row0[1],
            label="Degraded image",
            format="png",
            interactive=False,
            elem_id="dataset-image",
            height=320,
            scale=1,
        )
        with gr.Column(scale=2):
            row_md = gr.Markdown(row0[0] or "", elem_id="dataset-row")
            deg_table = gr.Dataframe(
                row0[2], headers=DEG_HEADERS, interactive=False, elem_id="dataset-row-degradations", wrap=True
            )
            to_model = gr.Button("Ask the model about this row", elem_id="dataset-to-model")
    blocks = [
        gr.Textbox(
            row0[3 + i] or "",
            label=f.upper(),
            interactive=False,
            lines=1 if f in ("type", "answer") else 2,
            elem_id=f"dataset-{f}",
        )
        for i, f in enumerate(FIELDS)
    ]
    with gr.Accordion("Report", open=False):
        report_btn = gr.Button("Make the report (into the work folder)", elem_id="dataset-report-run")
        report_status = gr.Markdown(elem_id="dataset-report-status")
        report_gallery = gr.Gallery(
            first.get("report"), label="report plots", columns=3, height=320, elem_id="dataset-report", format="png"
        )
        report_md = gr.Markdown(first.get("report_md", ""), elem_id="dataset-report-summary")

    row_outs = [row_md, image, deg_table, *blocks, row_state]
    filter_outs = [count, table, matches, *row_outs]
    open_outs = [status, ds_key, degs, stages, configs, lo, hi, text, *filter_outs, report_gallery, report_md]

    def _filter_values(view: DatasetView, d, s, c, a, b, t) -> tuple:
        cnt, tbl, keys, _ = filtered(view, d, s, c, a, b, t)
        first = (
            row_outputs(view, *keys[0])
            if keys
            else ("no row matches the filters", None, None, *[""] * len(FIELDS), gr.skip())
        )
        return (cnt, tbl, keys, *first)

    def open_view(spec_text: str, progress: Any) -> tuple:
        view = studio.datasets.open(spec_text, progress=lambda f, d: progress(f, desc=d))
        o = opened(view)
        a, b = o["range"]
        row = o["row"] or ("no row matches the filters", None, None, *[""] * len(FIELDS), gr.skip())
        return (
            o["status"],
            o["key"],
            gr.update(choices=o["degradations"], value=[]),
            gr.update(choices=o["stages"], value=[]),
            gr.update(choices=o["configs"], value=o["configs"]),
            gr.update(minimum=a, maximum=b, value=a),
            gr.update(minimum=a, maximum=b, value=b),
            "",
            o["count"],
            o["table"],
            o["keys"],
            *row,
            o["report"],
            o["report_md"],
        )

    @guarded(len(open_outs))
    def on_open(spec_text: str, progress=gr.Progress()):
        return open_view(spec_text, progress)

    @guarded(len(open_outs) + 1)
    def on_build_demo(progress=gr.Progress(track_tqdm=True)):
        from factory.build import demo

        out = studio.workdir.path("demo-dataset")
        progress(0.0, desc="building the demo dataset (about 10-20 s)")
        demo(out, progress=True)
        res = open_view(str(out), progress)
        return (f"demo dataset built in {out}  \n" + res[0], str(out), *res[1:])

    def on_filter(key, d, s, c, a, b, t):
        try:
            view = studio.datasets.get(key)
            return _filter_values(view, d, s, c, a, b, t)
        except Exception as exc:  # noqa: BLE001 - shown in the row panel, the app goes on
            from .common import error_markdown

            msg = str(exc) if isinstance(exc, ValueError) else f"unexpected {type(exc).__name__}: {exc}"
            return (error_markdown(msg), *[gr.skip()] * (len(filter_outs) - 1))

    @guarded(len(row_outs))
    def on_select(key, keys, evt: gr.SelectData):
        view = studio.datasets.get(key)
        r = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not keys or r is None or not 0 <= int(r) < len(keys):
            raise StudioError("pick a row of the table.")
        config, sample_id = keys[int(r)]
        return row_outputs(view, config, sample_id)

    @guarded(3)
    def on_report(key, progress=gr.Progress()):
        rep, msg = report_for(studio, studio.datasets.get(key), lambda f, d: progress(f, desc=d))
        return msg, report_images(rep), report_summary(rep)

    def on_to_model(state):
        if not state:
            return gr.skip(), gr.skip()
        return state, gr.Tabs(selected="model")

    open_btn.click(on_open, spec, open_outs)
    spec.submit(on_open, spec, open_outs)
    demo_btn.click(on_build_demo, None, [status, spec, *open_outs[1:]])
    filter_inputs = [ds_key, degs, stages, configs, lo, hi, text]
    for comp, ev in (
        (degs, "input"),
        (stages, "input"),
        (configs, "input"),
        (lo, "release"),
        (hi, "release"),
        (text, "submit"),
    ):
        getattr(comp, ev)(on_filter, filter_inputs, filter_outs)
    table.select(on_select, [ds_key, matches], row_outs)
    report_btn.click(on_report, ds_key, [report_status, report_gallery, report_md])
    to_model.click(on_to_model, row_state, [shared["row"], shared["tabs"]])

    load = None
    if studio.cfg.dataset and init is None and not init_error:  # a Hub id: opened once the page is up
        load = (on_open, spec, open_outs)
    return {"load": load}
