"""The offline, deterministic chain writer (backend ``template``).

It writes fluent, specific chains from the recipe and the QA without any model: one influence
sentence per degradation, chosen by the op and its intensity band; reasoning that walks from
what is still visible to the answer and is scaled to the target length; a conclusion stating
the answer. Same inputs → same text (the wording is drawn from a generator seeded by the sample
id). It does not look at pixels, so it cannot describe scene content beyond the question and
answer: use it offline, for smoke tests and as a baseline; use an LLM backend for real data.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from factory.degrade.recipes import Recipe, derive_seed

BANDS = (("low", 0.34), ("medium", 0.67), ("high", 1.01))
ADJ = {
    "low": ("slight", "mild", "faint"),
    "medium": ("moderate", "clear", "noticeable"),
    "high": ("severe", "heavy", "strong"),
}

# name -> (what it does, what it hides, what survives)
EFFECTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "lens blur": (("defocus softens every edge", "the out-of-focus optics smear fine texture"), "small text, thin lines and fine texture", "large shapes and colour regions"),
    "lens flare": (("stray light washes a bright haze over part of the frame", "a glare source adds glowing halos and ghost discs"), "contrast and detail inside the glare", "objects away from the bright spot"),
    "motion blur": (("camera motion drags every edge into streaks", "motion during exposure smears the picture along one direction"), "edges across the motion and small parts", "the overall layout and dominant colours"),
    "dirty lens": (("smudges on the lens veil patches of the picture in a milky haze", "dirt on the front element blurs and brightens some regions"), "detail and contrast under the smudges", "the regions between the smudges"),
    "hsv saturation": (("the colour saturation is pushed away from natural", "colour processing distorts how vivid the colours are"), "true colour differences", "shapes, edges and brightness"),
    "jpeg compression": (("JPEG compression adds blocky artefacts and ringing", "lossy compression removes fine detail and adds 8×8 blocks"), "fine texture and small text", "coarse shapes and the main objects"),
    "block exchange": (("square blocks of the picture are swapped around", "transmission errors move blocks to the wrong places"), "the continuity of objects cut by the blocks", "the content inside each intact block"),
    "mean shift": (("colours are flattened into uniform patches", "mean-shift filtering merges regions into flat colours"), "texture and subtle shading", "object outlines and the main colours"),
    "scan lines": (("dark scan lines and torn bands run across the picture", "analogue transmission adds horizontal lines and sideways tears"), "thin horizontal detail and band edges", "objects between the lines"),
    "dark illumination": (("the scene is underexposed and the shadows are crushed", "low light darkens the whole picture"), "anything in the shadows", "bright regions and strong outlines"),
    "atmospheric turbulence": (("heat shimmer warps the picture and wobbles straight lines", "turbulence bends and slightly blurs the scene"), "straight edges and fine geometry", "objects and their rough shapes"),
    "gaussian noise": (("sensor noise speckles every pixel", "grainy noise covers the picture"), "fine texture and faint detail", "large objects and strong edges"),
    "color diffusion": (("colours bleed across edges and drift off their objects", "chroma spreads beyond the objects it belongs to"), "which colour belongs to which object", "brightness structure and shapes"),
    "sharpness change": (("over-sharpening adds halos and harsh edges", "aggressive sharpening exaggerates edges and noise"), "smooth gradients and true edge positions", "the objects themselves"),
    "graffiti": (("spray-paint strokes cover parts of the picture", "painted scribbles are drawn over the scene"), "whatever lies under the strokes", "the uncovered parts of the scene"),
    "watermark damage": (("a tiled watermark overlays the picture", "semi-transparent watermark text runs across the frame"), "fine detail under the letters", "the scene behind the translucent text"),
}

OPENERS = (
    "Looking past the damage, the question is {q}",
    "Setting the damage aside and reading the picture as if it were clean, the question is {q}",
    "Reasoning about the clean scene, the question asks {q}",
)
EVIDENCE = (
    "The {survives} are still clear enough to show {ans}.",
    "What remains visible, mainly the {survives}, is consistent with {ans}.",
    "Even with the {hides} degraded, the {survives} point to {ans}.",
)
PADDING = (
    "The overall layout of the scene and the relation between the objects agree with {ans}.",
    "Nothing that survives the damage contradicts {ans}.",
    "The colours and shapes that are least affected by the damage match {ans}.",
    "A clean view of the same scene would show the same thing, so the damage changes how hard the question is, not its answer.",
    "The parts of the image hidden by the damage are not needed to recognise {ans}.",
    "Comparing the visible evidence with each possibility leaves {ans} as the best fit.",
    "The context of the picture makes {ans} the natural reading.",
    "The most reliable cues are the large structures, and they support {ans}.",
    "Fine details are uncertain here, so the decision rests on the coarse evidence, which favours {ans}.",
    "Checking the answer once more against the visible regions confirms {ans}.",
)


def band(intensity: float) -> str:
    for name, upper in BANDS:
        if intensity < upper:
            return name
    return "high"


def _rng(sample_id: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(0, "template-writer", sample_id))


def influence(recipe: Recipe, sample_id: str) -> str:
    rng = _rng(sample_id + "|influence")
    sentences = []
    for step in recipe.steps:
        does, hides, survives = EFFECTS[step.name]
        b = band(step.intensity)
        adj = ADJ[b][int(rng.integers(len(ADJ[b])))]
        sentences.append(
            f"The {step.name} at {step.intensity:.2f} is {adj}: {does[int(rng.integers(len(does)))]}, "
            f"which makes {hides} {'hard to read' if b == 'high' else 'less reliable'}, while {survives} stay usable."
        )
    if not sentences:
        return "The picture shows no visible damage, so every detail can be read as usual."
    return " ".join(sentences)


def reasoning(recipe: Recipe, sample_id: str, question: str, choices: Sequence[str], answer_text: str, target: int) -> str:
    """Reasoning of ``target`` words (within ±10 % when the sentence pool allows)."""
    rng = _rng(sample_id + "|reasoning")
    ans = f'"{answer_text}"'
    q = question.rstrip("?").strip() + "?"
    q = q[:1].lower() + q[1:] if q[:2] != q[:2].upper() else q
    main = max(recipe.steps, key=lambda s: s.intensity) if recipe.steps else None
    hides, survives = (EFFECTS[main.name][1], EFFECTS[main.name][2]) if main else ("details", "whole scene")
    opener = OPENERS[int(rng.integers(len(OPENERS)))].format(q=q)
    evidence = EVIDENCE[int(rng.integers(len(EVIDENCE)))].format(survives=survives, hides=hides, ans=ans)
    optional = []
    if choices:
        others = [c for c in choices if c != answer_text]
        optional.append(f"The options are {', '.join(repr(c) for c in choices)}.")
        if others:
            optional.append(f"The evidence rules out {', '.join(repr(c) for c in others)}.")
    pool = [p.format(ans=ans) for p in PADDING]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    hi = target * 1.1

    def n(parts: list[str]) -> int:
        return sum(len(x.split()) for x in parts)

    if n([opener, evidence]) > hi:  # short targets: compact forms
        opener = f"The question asks {q}"
        evidence = f"The visible evidence points to {ans}."
    body = [opener]
    for o in optional:
        if n(body + [o, evidence]) <= hi:
            body.append(o)
    body.append(evidence)
    # Fill with relevant sentences that fit under the upper bound (cycling the pool for long chains).
    k = 0
    while n(body) < target * 0.95 and k < 20 * len(pool):
        cand = pool[k % len(pool)]
        k += 1
        if n(body) + len(cand.split()) <= hi:
            body.append(cand)
        elif all(n(body) + len(c.split()) > hi for c in pool):
            break
    return " ".join(body)


def conclusion(recipe: Recipe, sample_id: str, answer: str, answer_text: str, choices: Sequence[str]) -> str:
    rng = _rng(sample_id + "|conclusion")
    main = max(recipe.steps, key=lambda s: s.intensity).name if recipe.steps else "damage"
    forms = (
        f"Despite the {main}, the evidence supports {answer_text!r}",
        f"Reading past the {main}, the answer is {answer_text!r}",
        f"The visible evidence leads to {answer_text!r} even with the {main}",
    )
    text = forms[int(rng.integers(len(forms)))]
    if choices:
        text += f", option {answer}"
    return text + "."
