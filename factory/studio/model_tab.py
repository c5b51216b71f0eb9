"""The Model tab: ask the loaded model (transformers, the tiny offline one included, or an
OpenAI-compatible endpoint) about a degraded image; its chain is parsed, its TYPE compared with
the damage really applied (each degradation named or missed, the intensity error) and its answer
marked right or wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from factory import degrade
from factory.chains.format import FIELDS, parse_chain

from . import engine
from .chain_tab import demo_questions, example_fields, question_inputs
from .common import StudioError, display, guarded, load_upload, parse_options
from .degrade_tab import DEFAULT_PHOTO, PHOTOS
from .models import compare_types, judge_answer, type_summary

if TYPE_CHECKING:  # pragma: no cover
    from .context import Studio

IMAGE_SOURCES = ("bundled photo", "upload", "the Degrade tab's result", "the dataset row")
DAMAGE = ("eval recipe (one degradation)", "train recipe", "none (clean)")
TYPE_HEADERS = ["degradation", "truth", "predicted", "verdict", "|error|"]


def model_input(
    *,
    image_from: str,
    photo_name: str,
    upload: dict | None,
    damage: str,
    level: float,
    seed: Any,
    sample_id: str,
    degrade_result: dict | None,
    row: dict | None,
    style: str | None = None,
) -> dict[str, Any]:
    """The image shown to the model and the truth: ``{"image", "truth": [(name, s)], "label"}``."""
    if image_from == IMAGE_SOURCES[2]:
        if not degrade_result:
            raise StudioError("the Degrade tab has no result yet: degrade an image there first.")
        return {
            "image": degrade_result["degraded"],
            "label": f"{degrade_result['label']} (Degrade tab)",
            "truth": [(d["name"], float(d["intensity"])) for d in degrade_result["recipe"]["degradations"]],
        }
    if image_from == IMAGE_SOURCES[3]:
        if not row or row.get("image") is None:
            raise StudioError(
                "no dataset row: open a dataset in the Dataset tab, pick a row and press "
                "'Ask the model about this row'."
            )
        return {"image": row["image"], "label": row["label"], "truth": list(row["degradations"])}
    if image_from == IMAGE_SOURCES[0]:
        if photo_name not in PHOTOS:
            raise StudioError(f"bundled photo {photo_name!r}: choose one of {', '.join(PHOTOS)}.")
        from factory.photos import photo

        clean, label = degrade.to_rgb_uint8(photo(photo_name)), photo_name
    elif image_from == IMAGE_SOURCES[1]:
        if not upload or upload.get("image") is None:
            raise StudioError("upload: no image uploaded yet; upload one (or pick a bundled photo).")
        clean, label = upload["image"], upload["label"]
    else:
        raise StudioError(f"image {image_from!r}: use one of {', '.join(IMAGE_SOURCES)}.")
    seed_i = engine.check_seed(seed)
    sid = str(sample_id or "studio").strip() or "studio"
    if damage == DAMAGE[2]:
        return {"image": clean, "label": f"{label} (clean)", "truth": []}
    if damage == DAMAGE[0]:
        recipe = engine.drawn_recipe("eval", seed=seed_i, sample_id=sid, level=float(level), style=style)
    elif damage == DAMAGE[1]:
        recipe = engine.drawn_recipe("train", seed=seed_i, sample_id=sid, style=style)
    else:
        raise StudioError(f"damage {damage!r}: use one of {', '.join(DAMAGE)}.")
    return {
        "image": engine.render(clean, recipe),
        "label": f"{label}, {engine.type_text(recipe)}",
        "truth": recipe.type_pairs(),
    }


def ask(
    studio: Studio,
    inp: dict[str, Any],
    *,
    question: str,
    options: str,
    answer: str,
    max_new_tokens: int,
    progress: Any = None,
) -> dict[str, Any]:
    """Ask the studio's model about ``inp["image"]``; parse, compare and judge its answer."""
    from factory.chains.prompting import build_prompt

    if not str(question or "").strip():
        raise StudioError("question: empty; type a question about the image.")
    choices = parse_options(options)
    prompt = build_prompt(question, choices)
    if progress is not None:
        progress(0.1, "waiting for the model to load")
    studio.model.wait(timeout=600)
    if progress is not None:
        progress(0.3, f"asking {studio.model.name}")
    text = studio.model.generate(inp["image"], prompt, max_new_tokens=max_new_tokens)
    parsed = parse_chain(text)
    cmp = compare_types(parsed.type, inp["truth"])
    verdict = judge_answer(text, answer, choices)
    return {"text": text, "parsed": parsed, "types": cmp, "answer": verdict, "prompt": prompt, "choices": choices}


def verdict_markdown(res: dict[str, Any]) -> str:
    v, choices = res["answer"], res["choices"]
    picked = ""
    if v["picked"] is not None and choices:
        picked = f" (option {v['picked']}: {choices[v['picked']]})"
    if v["correct"] is None:
        ans = f"**answer:** `{v['predicted'][:120]}`{picked} · no truth given, not judged"
    elif v["correct"]:
        ans = f"✔ **answer right:** `{v['predicted'][:120]}`{picked}"
    else:
        ans = f"✘ **answer wrong:** `{v['predicted'][:120]}`{picked}"
    return f"{ans}  \n**TYPE:** {type_summary(res['types'])}"


def format_markdown(parsed) -> str:
    problems = parsed.problems()
    return "format: ✔ all five blocks, in order" if parsed.is_complete else "format: ⚠ " + "; ".join(problems)


def build(studio: Studio, shared: dict[str, Any]) -> dict[str, Any]:
    import gradio as gr
    import pandas as pd

    examples = demo_questions()
    first = examples[0]
    upload_state = gr.State(None)
    with gr.Row(equal_height=True):
        model_box = gr.Textbox(
            studio.cfg.model or "",
            label="Model (folder, Hub id or 'tiny'; with an endpoint: its model name)",
            elem_id="model-path",
            scale=3,
        )
        endpoint_box = gr.Textbox(
            studio.cfg.endpoint or "",
            label="…or an OpenAI-compatible endpoint",
            placeholder="http://localhost:8000/v1",
            elem_id="model-endpoint",
            scale=3,
        )
        load_btn = gr.Button("Load", elem_id="model-load", scale=1)
    model_status = gr.Markdown(studio.model.describe(), elem_id="model-status")
    timer = gr.Timer(1.0, active=studio.model.state == "loading")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            image_from = gr.Radio(
                list(IMAGE_SOURCES), value=IMAGE_SOURCES[0], label="Image", elem_id="model-image-from"
            )
            photo_dd = gr.Dropdown(
                list(PHOTOS),
                value=first["photo"] if first["photo"] in PHOTOS else DEFAULT_PHOTO,
                label="Bundled photo",
                elem_id="model-photo",
            )
            upload = gr.File(
                label="…or upload an image", file_count="single", type="filepath", elem_id="model-upload", height=110
            )
            damage = gr.Radio(
                list(DAMAGE), value=DAMAGE[0], label="Damage (for a photo or an upload)", elem_id="model-damage"
            )
            level = gr.Radio(
                [(f"{lv:.2f}", lv) for lv in degrade.EVAL_LEVELS], value=0.45, label="eval level", elem_id="model-level"
            )
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="model-seed", min_width=80)
                sample_id = gr.Textbox("studio", label="Sample id", elem_id="model-sample-id", min_width=100)
            example, question, options, answer = question_inputs(
                examples, "model", "True answer (optional: index, letter or text)", "model-true-answer"
            )
            max_new = gr.Slider(16, 2048, value=512, step=16, label="max new tokens", elem_id="model-max-new")
            ask_btn = gr.Button("Ask the model", variant="primary", elem_id="model-ask")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_id="model-ask-status")
            with gr.Row():
                shown = gr.Image(
                    None,
                    label="What the model sees",
                    format="png",
                    interactive=False,
                    elem_id="model-image",
                    height=300,
                )
                with gr.Column():
                    verdict = gr.Markdown(elem_id="model-verdict")
                    type_table = gr.Dataframe(None, headers=TYPE_HEADERS, interactive=False, elem_id="model-type-table")
                    fmt = gr.Markdown(elem_id="model-format")
            blocks = [
                gr.Textbox(
                    label=f.upper(), interactive=False, lines=1 if f in ("type", "answer") else 2, elem_id=f"model-{f}"
                )
                for f in FIELDS
            ]
            with gr.Accordion("Raw output and prompt", open=False):
                raw = gr.Textbox(label="model output", interactive=False, lines=6, elem_id="model-raw")
                prompt_box = gr.Textbox(label="prompt", interactive=False, lines=3, elem_id="model-prompt")

    def on_example(label: str):
        fields = example_fields(examples, label)
        return (*fields, IMAGE_SOURCES[0]) if fields else (gr.skip(),) * 5

    @guarded(2)
    def on_load(m, e):
        studio.model.start(m, e)
        return studio.model.describe(), gr.Timer(active=True)

    def on_tick():
        desc = studio.model.describe()
        return desc, gr.Timer(active=studio.model.state == "loading")

    @guarded(4, reset={3: None})  # a rejected file is cleared from the widget
    def on_upload(path):
        from pathlib import Path

        img = load_upload(path, max_pixels=studio.max_pixels)
        name = Path(str(path)).name
        return (
            f"uploaded **{name}** ({img.shape[1]}×{img.shape[0]})",
            {"image": img, "label": Path(name).stem},
            IMAGE_SOURCES[1],
            gr.skip(),
        )

    def on_row(row):
        if not row:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (
            IMAGE_SOURCES[3],
            row["question"],
            "\n".join(row["choices"]),
            row["answer"],
            f"dataset row **{row['label']}**",
        )

    n_out = 7 + len(FIELDS)

    @guarded(n_out)
    def on_ask(src, ph, up, dmg, lv, sd, sid, dres, row, style, q, opts, ans, mx, progress=gr.Progress()):
        inp = model_input(
            image_from=src,
            photo_name=ph,
            upload=up,
            damage=dmg,
            level=lv,
            seed=sd,
            sample_id=sid,
            degrade_result=dres,
            row=row,
            style=style,
        )
        res = ask(
            studio,
            inp,
            question=q,
            options=opts,
            answer=ans,
            max_new_tokens=int(mx),
            progress=lambda f, d: progress(f, desc=d),
        )
        rows = [
            [
                r["degradation"],
                r["truth"],
                r["predicted"],
                r["verdict"],
                None if r["error"] is None else round(r["error"], 3),
            ]
            for r in res["types"]["rows"]
        ]
        parsed = res["parsed"]
        return (
            f"**{studio.model.name}** on {inp['label']}",
            display(inp["image"], 640),
            verdict_markdown(res),
            pd.DataFrame(rows, columns=TYPE_HEADERS),
            format_markdown(parsed),
            res["text"],
            res["prompt"],
            *[getattr(parsed, f) or "" for f in FIELDS],
        )

    example.input(on_example, example, [question, options, answer, photo_dd, image_from])
    load_btn.click(on_load, [model_box, endpoint_box], [model_status, timer])
    timer.tick(on_tick, None, [model_status, timer])
    upload.upload(on_upload, upload, [status, upload_state, image_from, upload])
    shared["row"].change(on_row, shared["row"], [image_from, question, options, answer, status])
    ask_btn.click(
        on_ask,
        [
            image_from,
            photo_dd,
            upload_state,
            damage,
            level,
            seed,
            sample_id,
            shared["result"],
            shared["row"],
            shared["style"],
            question,
            options,
            answer,
            max_new,
        ],
        [status, shown, verdict, type_table, fmt, raw, prompt_box, *blocks],
    )
    return {"load": (on_tick, None, [model_status, timer])}
