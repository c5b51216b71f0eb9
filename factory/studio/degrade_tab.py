"""The Degrade tab: a bundled photo or an upload, chosen degradations or a drawn recipe, the clean
and degraded images side by side, the TYPE line, the recipe JSON, a strip of one degradation
across intensities, and downloads (written to the work folder)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from factory import degrade
from factory.photos import GRAY_PHOTOS, RGB_PHOTOS, RGBA_PHOTOS, photo

from . import engine
from .common import StudioError, difference, display, guarded, load_upload, png_bytes, short_hash, slug

if TYPE_CHECKING:  # pragma: no cover
    from .context import Studio

PHOTOS: tuple[str, ...] = RGB_PHOTOS + GRAY_PHOTOS + RGBA_PHOTOS
DEFAULT_PHOTO = "astronaut"
MODES = ("choose degradations", "train recipe", "eval recipe")
VISIBLE_SLOTS = 4


def source_image(source: dict[str, Any] | None) -> tuple[np.ndarray, str]:
    """The clean image a tab state points at: ``{"photo": name}`` or ``{"image": array, "label": ...}``."""
    source = source or {"photo": DEFAULT_PHOTO}
    if source.get("photo"):
        return degrade.to_rgb_uint8(photo(source["photo"])), str(source["photo"])
    if source.get("image") is None:
        raise StudioError("no image: pick a bundled photo or upload one.")
    return source["image"], str(source.get("label") or "upload")


def pick_photo(name: str) -> tuple[str, dict[str, Any], np.ndarray]:
    if name not in PHOTOS:
        raise StudioError(f"bundled photo {name!r}: choose one of {', '.join(PHOTOS)}.")
    img = degrade.to_rgb_uint8(photo(name))
    return f"bundled photo **{name}** ({img.shape[1]}×{img.shape[0]})", {"photo": name}, display(img)


def take_upload(path: str | None, max_pixels: int) -> tuple[str, dict[str, Any], np.ndarray]:
    img = load_upload(path, max_pixels=max_pixels)
    from pathlib import Path

    name = Path(str(path)).name
    return (
        f"uploaded **{name}** ({img.shape[1]}×{img.shape[0]})",
        {"image": img, "label": Path(name).stem},
        display(img),
    )


def make_recipe(
    mode: str, slots: list[tuple[str | None, float]], *, seed: Any, sample_id: str, level: float, style: str | None
) -> degrade.Recipe:
    seed_i = engine.check_seed(seed)
    sid = str(sample_id or "studio").strip() or "studio"
    if mode == MODES[0]:
        return engine.manual_recipe(slots, seed=seed_i, sample_id=sid, style=style)
    if mode == MODES[1]:
        return engine.drawn_recipe("train", seed=seed_i, sample_id=sid, style=style)
    if mode == MODES[2]:
        return engine.drawn_recipe("eval", seed=seed_i, sample_id=sid, level=float(level), style=style)
    raise StudioError(f"mode {mode!r}: use one of {', '.join(MODES)}.")


def run_degrade(
    studio: Studio,
    source: dict[str, Any] | None,
    mode: str,
    slots: list[tuple[str | None, float]],
    *,
    seed: Any,
    sample_id: str,
    level: float,
    style: str | None,
    progress: Any = None,
) -> dict[str, Any]:
    """Degrade the current image; returns everything the tab shows (and writes the downloads)."""
    img, label = source_image(source)
    recipe = make_recipe(mode, slots, seed=seed, sample_id=sample_id, level=level, style=style)
    out = engine.render(img, recipe, progress=progress)
    type_line = engine.type_text(recipe)
    rec = recipe.to_dict()
    stem = f"{slug(label)}-{short_hash(label, img.shape, json.dumps(rec, sort_keys=True))}"
    png = studio.workdir.write_bytes(f"degrade/{stem}.png", png_bytes(out))
    side = {"source": label, "output": png.name, "type": type_line, **rec}
    js = studio.workdir.write_json(f"degrade/{stem}.json", side)
    diff = difference(img, out)
    return {
        "clean": img,
        "degraded": out,
        "label": label,
        "recipe": rec,
        "type": type_line,
        "files": [str(png), str(js)],
        "diff": diff,
    }


def run_strip(
    studio: Studio, source: dict[str, Any] | None, name: str, levels_text: str, *, seed: Any, style: str | None
) -> dict[str, Any]:
    img, label = source_image(source)
    if not name:
        raise StudioError("choose the degradation to show across intensities.")
    levels = engine.parse_levels(levels_text)
    seed_i = engine.check_seed(seed)
    small = display(img, 384)
    items = engine.strip(small, name, levels, seed=seed_i, style=style)
    sheet = engine.contact_sheet(
        small, name, levels, seed=seed_i, style=style, title=f"{label}: {degrade.get(name).name}"
    )
    stem = f"{slug(label)}-{slug(degrade.get(name).name)}-{short_hash(label, img.shape, levels, seed_i, style)}"
    path = studio.workdir.write_bytes(f"degrade/{stem}-strip.png", png_bytes(sheet))
    return {"items": items, "sheet": str(path)}


def build(studio: Studio) -> dict[str, Any]:
    """Lay out the tab inside the current ``gr.Blocks``; returns the states other tabs read."""
    import gradio as gr

    names = degrade.names()
    styles = engine.styles()
    style_info = "reference: the reference code's look; physical: physically modelled ops; mixed: drawn per degradation"
    first = degrade.to_rgb_uint8(photo(DEFAULT_PHOTO))
    source = gr.State({"photo": DEFAULT_PHOTO})
    result = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            photo_dd = gr.Dropdown(list(PHOTOS), value=DEFAULT_PHOTO, label="Bundled photo", elem_id="degrade-photo")
            upload = gr.File(
                label="…or upload an image", file_count="single", type="filepath", elem_id="degrade-upload", height=110
            )
            mode = gr.Radio(list(MODES), value=MODES[0], label="Degradations", elem_id="degrade-mode")
            slot_names, slot_levels = [], []

            def slot(i: int) -> None:
                with gr.Row(equal_height=True):
                    slot_names.append(
                        gr.Dropdown(
                            names,
                            value="lens blur" if i == 0 else None,
                            label=f"Degradation {i + 1}",
                            elem_id=f"degrade-name-{i}",
                            scale=3,
                            min_width=150,
                        )
                    )
                    slot_levels.append(
                        gr.Slider(
                            0,
                            1,
                            value=0.45,
                            step=0.01,
                            label="intensity",
                            elem_id=f"degrade-s-{i}",
                            scale=2,
                            min_width=120,
                        )
                    )

            with gr.Group(visible=True) as manual_box:
                for i in range(VISIBLE_SLOTS):
                    slot(i)
                with gr.Accordion(f"{engine.MANUAL_SLOTS - VISIBLE_SLOTS} more", open=False):
                    for i in range(VISIBLE_SLOTS, engine.MANUAL_SLOTS):
                        slot(i)
            level = gr.Radio(
                [(f"{lv:.2f}", lv) for lv in degrade.EVAL_LEVELS],
                value=0.45,
                label="eval level (25 / 50 / 100 %)",
                visible=False,
                elem_id="degrade-level",
            )
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="degrade-seed", min_width=80)
                sample_id = gr.Textbox(
                    "studio",
                    label="Sample id (recipes derive from seed + id)",
                    elem_id="degrade-sample-id",
                    min_width=160,
                )
            style = gr.Radio(
                list(styles),
                value=engine.default_style(),
                label="Style",
                info=style_info,
                elem_id="degrade-style",
            )
            run = gr.Button("Degrade", variant="primary", elem_id="degrade-run")
        with gr.Column(scale=2):
            status = gr.Markdown(
                f"bundled photo **{DEFAULT_PHOTO}** ({first.shape[1]}×{first.shape[0]})", elem_id="degrade-status"
            )
            with gr.Row(equal_height=True):
                clean_img = gr.Image(
                    display(first), label="Clean", format="png", interactive=False, elem_id="degrade-clean", height=360
                )
                out_img = gr.Image(
                    None, label="Degraded", format="png", interactive=False, elem_id="degrade-out", height=360
                )
            type_box = gr.Textbox(label="TYPE", interactive=False, elem_id="degrade-type", buttons=["copy"])
            diff_md = gr.Markdown(elem_id="degrade-diff")
            with gr.Accordion("Recipe JSON", open=False):
                recipe_code = gr.Code(
                    None, language="json", label="recipe", elem_id="degrade-recipe", interactive=False
                )
            files = gr.File(
                label="Download (degraded PNG + recipe JSON)",
                file_count="multiple",
                interactive=False,
                elem_id="degrade-files",
            )
    with gr.Accordion("One degradation across intensities", open=True):
        with gr.Row():
            strip_name = gr.Dropdown(names, value="lens blur", label="Degradation", elem_id="strip-name", scale=2)
            strip_levels = gr.Textbox("0, 0.23, 0.45, 0.9", label="Intensities", elem_id="strip-levels", scale=2)
            strip_run = gr.Button("Show", elem_id="strip-run", scale=1)
        strip_status = gr.Markdown(elem_id="strip-status")
        strip_gallery = gr.Gallery(
            label="across intensities", columns=4, height=260, elem_id="strip-gallery", format="png"
        )
        strip_file = gr.File(label="Contact sheet", interactive=False, elem_id="strip-file", height=70)

    @guarded(3)
    def on_photo(name: str):
        return pick_photo(name)

    @guarded(4, reset={3: None})  # a rejected file is cleared from the widget, ready for the next
    def on_upload(path: str | None):
        return (*take_upload(path, studio.max_pixels), gr.skip())

    def on_mode(m: str):
        return gr.update(visible=m == MODES[0]), gr.update(visible=m == MODES[2])

    @guarded(7)
    def on_run(src, m, lv, sd, sid, st, *slot_values, progress=gr.Progress()):
        slots = list(zip(slot_values[: engine.MANUAL_SLOTS], slot_values[engine.MANUAL_SLOTS :]))
        res = run_degrade(
            studio, src, m, slots, seed=sd, sample_id=sid, level=lv, style=st, progress=lambda f, d: progress(f, desc=d)
        )
        n = len(res["recipe"]["degradations"])
        d = res["diff"]
        msg = (
            f"**{res['label']}**: {n} degradation{'s' if n != 1 else ''}, total intensity "
            f"{res['recipe']['total_intensity']:.2f}"
        )
        diff = f"changed: mean |Δ| = {d['mean_abs_diff']:.2f} (0–255), PSNR = {d['psnr_db']} dB"
        return (
            msg,
            display(res["degraded"]),
            res["type"],
            diff,
            json.dumps(res["recipe"], indent=2),
            res["files"],
            {k: res[k] for k in ("clean", "degraded", "label", "recipe", "type")},
        )

    @guarded(3)
    def on_strip(src, name, levels, sd, st):
        res = run_strip(studio, src, name, levels, seed=sd, style=st)
        return f"**{degrade.get(name).name}** at {len(res['items'])} intensities", res["items"], res["sheet"]

    photo_dd.input(on_photo, photo_dd, [status, source, clean_img])
    upload.upload(on_upload, upload, [status, source, clean_img, upload])
    upload.clear(on_photo, photo_dd, [status, source, clean_img])
    mode.change(on_mode, mode, [manual_box, level])
    run.click(
        on_run,
        [source, mode, level, seed, sample_id, style, *slot_names, *slot_levels],
        [status, out_img, type_box, diff_md, recipe_code, files, result],
    )
    strip_run.click(
        on_strip, [source, strip_name, strip_levels, seed, style], [strip_status, strip_gallery, strip_file]
    )
    return {"source": source, "result": result, "style": style}
