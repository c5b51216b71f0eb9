"""The Chain tab: question, options and answer → the reasoning chain the factory writes for a
degraded image, with the template backend (offline) or any OpenAI-compatible server; the target
length and each block are shown."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from factory import degrade
from factory.chains.format import FIELDS

from . import engine
from .common import StudioError, display, guarded, parse_options, resolve_answer
from .degrade_tab import DEFAULT_PHOTO, PHOTOS, source_image

if TYPE_CHECKING:  # pragma: no cover
    from .context import Studio

RECIPE_SOURCES = ("a train recipe drawn from the seed", "the Degrade tab's image and recipe")
BACKENDS = ("template", "openai")


def demo_questions() -> list[dict[str, Any]]:
    """The bundled demo QA set (``factory/assets/demo_qa.jsonl``): photo, question, choices, answer."""
    from factory.sources import demo_rows

    return demo_rows()


def example_label(row: dict[str, Any]) -> str:
    return f"{row['photo']}: {row['question']}"


def example_fields(examples: list[dict[str, Any]], label: str) -> tuple[str, str, str, str] | None:
    """Question, options (one per line), answer and photo of the example called ``label``."""
    row = next((r for r in examples if example_label(r) == label), None)
    if row is None:
        return None
    return row["question"], "\n".join(row["choices"]), str(row["answer"]), row["photo"]


def question_inputs(examples: list[dict[str, Any]], prefix: str, answer_label: str, answer_id: str) -> tuple[Any, ...]:
    """The example picker and the question, options and answer boxes (filled from the first
    example) of the Chain and Model tabs; element ids start with ``prefix``."""
    import gradio as gr

    labels = [example_label(r) for r in examples]
    first = examples[0]
    example = gr.Dropdown(
        labels, value=labels[0], label="Example (bundled demo questions)", elem_id=f"{prefix}-example"
    )
    question = gr.Textbox(first["question"], label="Question", elem_id=f"{prefix}-question")
    options = gr.Textbox(
        "\n".join(first["choices"]),
        lines=4,
        label="Options (one per line; empty = open question)",
        elem_id=f"{prefix}-options",
    )
    answer = gr.Textbox(str(first["answer"]), label=answer_label, elem_id=answer_id)
    return example, question, options, answer


def run_chain(
    studio: Studio,
    *,
    question: str,
    options: str,
    answer: str,
    recipe_from: str,
    degrade_result: dict | None,
    photo_name: str,
    seed: Any,
    sample_id: str,
    backend: str,
    base_url: str = "",
    model: str = "",
    vision: bool = True,
    style: str | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Write one chain; returns the result fields, the recipe and the images it was written for."""
    from factory.chains.writer import ChainConfig, ChainRequest, write_chains

    if not str(question or "").strip():
        raise StudioError("question: empty; type the question about the image.")
    choices = parse_options(options)
    answer_idx, answer_text = resolve_answer(answer, choices)
    if recipe_from == RECIPE_SOURCES[1]:
        if not degrade_result:
            raise StudioError(
                "the Degrade tab has no result yet: degrade an image there first, or draw a train recipe here."
            )
        recipe = degrade.Recipe.from_dict(degrade_result["recipe"])
        clean, degraded, label = degrade_result["clean"], degrade_result["degraded"], degrade_result["label"]
    elif recipe_from == RECIPE_SOURCES[0]:
        clean, label = source_image({"photo": photo_name or DEFAULT_PHOTO})
        seed_i = engine.check_seed(seed)
        recipe = engine.drawn_recipe("train", seed=seed_i, sample_id=str(sample_id or "studio"), style=style)
        degraded = engine.render(clean, recipe)
    else:
        raise StudioError(f"recipe {recipe_from!r}: use one of {', '.join(RECIPE_SOURCES)}.")
    if backend not in BACKENDS:
        raise StudioError(f"backend {backend!r}: use template or openai.")
    cfg = ChainConfig(
        backend=backend,
        model=(model or "").strip() or None,
        base_url=(base_url or "").strip() or None,
        cache_dir=str(studio.workdir.folder("chain-cache")) if backend == "openai" else None,
        vision=bool(vision),
        seed=engine.check_seed(seed),
        concurrency=1,
        max_retries=2,
        timeout=120.0,
    )
    if backend == "openai" and not cfg.model:
        raise StudioError(
            "openai backend: give the model name (e.g. gpt-4o, or the name your vLLM/Ollama server serves)."
        )
    req = ChainRequest(
        sample_id=f"studio:{label}:{recipe.sample_id}",
        question=question,
        choices=choices,
        answer=answer_idx,
        answer_text=answer_text,
        recipe=recipe,
        clean_image=clean,
        degraded_image=degraded,
    )
    if progress is not None:
        progress(0.1, "writing the chain" + (f" with {cfg.model}" if backend == "openai" else ""))
    report = write_chains([req], cfg)
    res = report[0]
    if not res.ok:
        raise StudioError(f"the {res.backend} backend could not write a valid chain: {res.reason}")
    words = len(res.reasoning.split())
    lo, hi = int(res.target_words * (1 - cfg.length_tolerance)), int(res.target_words * (1 + cfg.length_tolerance))
    return {
        "result": res,
        "recipe": recipe,
        "degraded": degraded,
        "label": label,
        "reasoning_words": words,
        "band": (lo, hi),
        "usage": dict(report.usage or {}),
        "cost_usd": report.cost_usd,
        "config": cfg,
    }


def key_status() -> str:
    return (
        "`OPENAI_API_KEY` is set (read from the environment, never shown)"
        if os.environ.get("OPENAI_API_KEY")
        else "`OPENAI_API_KEY` is not set: fine for a local server (vLLM, Ollama); "
        "api.openai.com needs it in the environment"
    )


def build(studio: Studio, shared: dict[str, Any]) -> dict[str, Any]:
    import gradio as gr

    examples = demo_questions()
    first = examples[0]
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            example, question, options, answer = question_inputs(
                examples, "chain", "Answer (option index, letter or text)", "chain-answer-in"
            )
            recipe_from = gr.Radio(
                list(RECIPE_SOURCES), value=RECIPE_SOURCES[0], label="Image and damage", elem_id="chain-recipe-from"
            )
            with gr.Row():
                photo_dd = gr.Dropdown(
                    list(PHOTOS), value=first["photo"], label="Bundled photo", elem_id="chain-photo", min_width=120
                )
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="chain-seed", min_width=80)
                sample_id = gr.Textbox("studio", label="Sample id", elem_id="chain-sample-id", min_width=100)
            backend = gr.Radio(
                list(BACKENDS),
                value="template",
                label="Backend",
                elem_id="chain-backend",
                info="template: offline and deterministic; openai: any OpenAI-compatible server",
            )
            with gr.Group(visible=False) as llm_box:
                base_url = gr.Textbox(
                    "",
                    label="Base URL (empty = api.openai.com)",
                    placeholder="http://localhost:8000/v1",
                    elem_id="chain-base-url",
                )
                model = gr.Textbox("", label="Model", placeholder="gpt-4o", elem_id="chain-model")
                vision = gr.Checkbox(True, label="send the images (vision model)", elem_id="chain-vision")
                gr.Markdown(key_status())
            run = gr.Button("Write the chain", variant="primary", elem_id="chain-run")
        with gr.Column(scale=2):
            status = gr.Markdown(elem_id="chain-status")
            with gr.Row():
                degraded = gr.Image(
                    None,
                    label="Degraded image the chain is about",
                    format="png",
                    interactive=False,
                    elem_id="chain-image",
                    height=240,
                    scale=1,
                )
                target = gr.Markdown(elem_id="chain-target")
            blocks = [
                gr.Textbox(
                    label=f.upper(), interactive=False, lines=1 if f in ("type", "answer") else 3, elem_id=f"chain-{f}"
                )
                for f in FIELDS
            ]
            with gr.Accordion("Full chain and prompt", open=False):
                solution = gr.Code(
                    None, label="solution (the dataset's solution column)", elem_id="chain-solution", interactive=False
                )
                prompt = gr.Textbox(
                    label="prompt (the dataset's prompt column)", interactive=False, lines=3, elem_id="chain-prompt"
                )

    def on_example(label: str):
        return example_fields(examples, label) or (gr.skip(),) * 4

    @guarded(5 + len(FIELDS))
    def on_run(q, opts, ans, src, dres, ph, sd, sid, be, url, mdl, vis, style, progress=gr.Progress()):
        out = run_chain(
            studio,
            question=q,
            options=opts,
            answer=ans,
            recipe_from=src,
            degrade_result=dres,
            photo_name=ph,
            seed=sd,
            sample_id=sid,
            backend=be,
            base_url=url,
            model=mdl,
            vision=vis,
            style=style,
            progress=lambda f, d: progress(f, desc=d),
        )
        res, recipe = out["result"], out["recipe"]
        lo, hi = out["band"]
        c = out["config"]
        tgt = (
            f"**target length:** {res.target_words} reasoning words ({c.length_base:g} + {c.length_per_unit:g} × total "
            f"intensity {recipe.total_intensity:.2f}, clamped to {c.length_min}–{c.length_max})  \n"
            f"**reasoning:** {out['reasoning_words']} words (accepted {lo}–{hi})  \n"
            f"**degradations:** {len(recipe.steps)} · backend `{res.backend}`"
        )
        if out["usage"]:
            u = out["usage"]
            tgt += f"  \n**usage:** {u.get('requests', 0)} requests, {u.get('cached', 0)} cached"
            if out["cost_usd"] is not None:
                tgt += f", ${out['cost_usd']:.4f}"
        status_md = f"chain written for **{out['label']}**"
        return (
            status_md,
            display(out["degraded"], 512),
            tgt,
            res.solution,
            res.prompt,
            *[getattr(res, f) for f in FIELDS],
        )

    example.input(on_example, example, [question, options, answer, photo_dd])
    backend.change(lambda b: gr.update(visible=b == "openai"), backend, llm_box)
    run.click(
        on_run,
        [
            question,
            options,
            answer,
            recipe_from,
            shared["result"],
            photo_dd,
            seed,
            sample_id,
            backend,
            base_url,
            model,
            vision,
            shared["style"],
        ],
        [status, degraded, target, solution, prompt, *blocks],
    )
    return {}
