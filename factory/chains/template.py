"""The offline, deterministic chain writer (backend ``template``).

It writes fluent, specific chains from the recipe and the QA without any model:

* INFLUENCE: one sentence per degradation, its wording chosen by the op *and* its intensity
  band (low < 0.34 ≤ medium < 0.67 ≤ high), naming what the damage does, what it hides and what
  survives; then a sentence on the overall damage.
* REASONING: walks from what is still visible (the evidence the strongest degradation leaves
  intact) to the answer, as if the picture were clean, and is scaled to the target word count
  with further relevant sentences (per degradation, per rejected option, checks): never filler
  words, never a repeated sentence.
* CONCLUSION: one sentence that states the answer (and its option number for multiple choice).

Same inputs → same text: the wording is drawn from a generator seeded by the sample id. It does
not look at pixels, so it cannot describe scene content beyond the question and the answer: use
it offline, for smoke tests and as a baseline; use an LLM backend for real data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from factory.degrade.recipes import Recipe, Step, derive_seed

from .backends import SampleFailed
from .validate import check_conclusion, check_length, check_text

BANDS: tuple[tuple[str, float], ...] = (("low", 0.34), ("medium", 0.67), ("high", float("inf")))
"""Intensity bands: upper bounds (exclusive). The eval levels 0.23 / 0.45 / 0.9 fall in one each."""


def band(intensity: float) -> str:
    for name, upper in BANDS:
        if intensity < upper:
            return name
    return "high"


@dataclass(frozen=True)
class OpText:
    """Wording of one degradation: effect clauses per band, what it hides, what survives."""

    effect: dict[str, tuple[str, ...]]
    hides: str
    """Plural noun phrase: what the damage makes unreliable."""
    keeps: str
    """Plural noun phrase: what stays usable."""


OPS: dict[str, OpText] = {
    "lens blur": OpText(
        {
            "low": (
                "a slight defocus softens the finest edges",
                "the optics are a little out of focus and crisp edges turn soft",
            ),
            "medium": (
                "a clear defocus blurs edges and small texture",
                "the out-of-focus optics smear fine texture into soft gradients",
            ),
            "high": (
                "heavy defocus turns the frame into soft blobs of colour",
                "the picture is so far out of focus that only broad forms remain",
            ),
        },
        "small text, thin lines and fine texture", "large shapes, colours and the overall layout",
    ),
    "lens flare": OpText(
        {
            "low": (
                "a faint glow of stray light lifts part of the frame",
                "a weak flare adds a soft halo near the light source",
            ),
            "medium": (
                "stray light washes a bright haze and ghost discs over part of the frame",
                "a flare adds glowing halos that lower the contrast around the light",
            ),
            "high": (
                "a strong flare floods part of the frame with glare and ghost discs",
                "intense stray light bleaches a large region into glowing haze",
            ),
        },
        "details and contrast inside the glare", "objects away from the bright region",
    ),
    "motion blur": OpText(
        {
            "low": (
                "slight motion during the exposure drags edges into short streaks",
                "a small camera shake doubles the finest edges",
            ),
            "medium": (
                "camera motion smears every edge into visible streaks",
                "motion during the exposure blurs the picture along one direction",
            ),
            "high": (
                "strong motion drags the whole picture into long streaks",
                "heavy camera shake smears objects far along the motion",
            ),
        },
        "edges across the motion, small parts and any text", "overall layout, large objects and their colours",
    ),
    "dirty lens": OpText(
        {
            "low": (
                "a few faint smudges veil small patches of the picture",
                "light dust on the lens adds a thin haze in places",
            ),
            "medium": (
                "smudges on the lens cover patches of the picture with a milky haze",
                "dirt on the front element blurs and brightens several regions",
            ),
            "high": (
                "thick smudges veil large parts of the picture in haze",
                "a heavily soiled lens washes out and blurs much of the frame",
            ),
        },
        "details and contrast under the smudges", "regions between the smudges and large shapes",
    ),
    "hsv saturation": OpText(
        {
            "low": (
                "the colour saturation is slightly off",
                "colour processing shifts how vivid the colours look a little",
            ),
            "medium": (
                "the colours are clearly washed out or pushed to garish",
                "wrong colour processing distorts how vivid the colours are",
            ),
            "high": (
                "the colours are drained almost to grey or pushed to extreme vividness",
                "colour processing has badly distorted the saturation",
            ),
        },
        "true colours and subtle colour differences", "shapes, edges, brightness and layout",
    ),
    "jpeg compression": OpText(
        {
            "low": (
                "mild JPEG compression leaves faint ringing around edges",
                "light compression slightly smooths the finest texture",
            ),
            "medium": (
                "JPEG compression adds 8×8 blocks and ringing around edges",
                "lossy compression removes fine texture and leaves blocky artefacts",
            ),
            "high": (
                "heavy JPEG compression breaks the picture into coarse blocks",
                "extreme compression wipes out texture and bands smooth areas into blocks",
            ),
        },
        "fine texture, small text and smooth gradients", "coarse shapes, main objects and their colours",
    ),
    "block exchange": OpText(
        {
            "low": (
                "a few square blocks of the picture are swapped around",
                "a handful of blocks are moved to the wrong places",
            ),
            "medium": (
                "many square blocks are swapped, cutting objects apart",
                "transmission errors move a good share of the blocks to wrong positions",
            ),
            "high": (
                "most of the picture is shuffled into misplaced blocks",
                "block errors scramble large parts of the layout",
            ),
        },
        "object continuity and positions", "contents of the intact blocks",
    ),
    "mean shift": OpText(
        {
            "low": (
                "mean-shift filtering flattens some texture into smooth patches",
                "slight colour flattening merges similar neighbouring tones",
            ),
            "medium": (
                "regions collapse into flat, shifted colour patches",
                "mean-shift filtering turns texture into uniform colour areas",
            ),
            "high": (
                "the picture is reduced to large flat patches of shifted colour",
                "strong flattening erases texture and shading almost entirely",
            ),
        },
        "texture, shading and exact colours", "object outlines and the main colour regions",
    ),
    "scan lines": OpText(
        {
            "low": (
                "faint horizontal scan lines run across the picture",
                "a few thin dark lines and small tears cross the frame",
            ),
            "medium": (
                "dark scan lines and sideways-torn bands run across the picture",
                "analogue transmission adds horizontal lines and shifted bands",
            ),
            "high": (
                "dense dark lines and badly torn bands cut through the picture",
                "heavy scan-line damage slices the frame into shifted strips",
            ),
        },
        "thin horizontal details and the edges at the tears", "objects between the lines and the overall scene",
    ),
    "dark illumination": OpText(
        {
            "low": ("the scene is slightly underexposed", "the light is a little dim and the shadows are deeper"),
            "medium": (
                "the scene is clearly underexposed and the shadows are crushed",
                "low light darkens the picture and hides the shadow regions",
            ),
            "high": (
                "the scene is very dark and most of it sinks into black",
                "severe underexposure leaves only the brightest parts visible",
            ),
        },
        "shadow details and dark colours", "bright regions and strong outlines",
    ),
    "atmospheric turbulence": OpText(
        {
            "low": ("a slight heat shimmer bends straight lines", "weak turbulence adds a faint wobble to edges"),
            "medium": (
                "heat shimmer warps the picture and wobbles straight lines",
                "turbulence bends and slightly blurs the scene",
            ),
            "high": (
                "strong turbulence distorts shapes and smears the whole scene",
                "heavy heat shimmer warps objects out of their true shape",
            ),
        },
        "straight edges, fine geometry and small details", "objects with their rough shapes and colours",
    ),
    "gaussian noise": OpText(
        {
            "low": ("light sensor noise adds a fine grain", "a faint speckle covers the picture"),
            "medium": ("visible grain speckles every region", "sensor noise covers the picture with coloured speckle"),
            "high": (
                "heavy noise buries the picture under dense speckle",
                "strong grain overwhelms the faint structure of the scene",
            ),
        },
        "fine texture and faint detail", "large objects, strong edges and the main colours",
    ),
    "color diffusion": OpText(
        {
            "low": ("colours bleed slightly across edges", "a little chroma spills past object borders"),
            "medium": (
                "colours bleed across edges and drift off their objects",
                "chroma spreads well beyond the objects it belongs to",
            ),
            "high": (
                "colours smear far from their objects and mix together",
                "strong colour bleeding detaches colours from their objects",
            ),
        },
        "links between colours and their objects", "brightness structure, shapes and layout",
    ),
    "sharpness change": OpText(
        {
            "low": ("mild over-sharpening adds thin halos along edges", "slight sharpening makes edges a little harsh"),
            "medium": (
                "over-sharpening adds bright halos and harsh edges",
                "aggressive sharpening exaggerates edges and grain",
            ),
            "high": (
                "extreme sharpening covers the picture with halos and amplified noise",
                "severe over-sharpening turns edges into glaring outlines",
            ),
        },
        "smooth gradients, true edge positions and fine texture", "objects themselves and their layout",
    ),
    "graffiti": OpText(
        {
            "low": (
                "a few spray-paint strokes cross the picture",
                "thin painted scribbles cover small parts of the scene",
            ),
            "medium": (
                "spray-paint strokes cover several parts of the picture",
                "painted scribbles are drawn over a good share of the scene",
            ),
            "high": ("dense spray paint covers much of the picture", "heavy scribbles hide large parts of the scene"),
        },
        "details under the strokes", "uncovered parts of the scene",
    ),
    "watermark damage": OpText(
        {
            "low": ("a faint tiled watermark lies over the picture", "light watermark text runs across the frame"),
            "medium": (
                "a semi-transparent tiled watermark overlays the picture",
                "watermark text repeated across the frame muddies the details",
            ),
            "high": (
                "a dense, strong watermark covers the whole picture",
                "opaque watermark text obscures much of the scene",
            ),
        },
        "fine detail and text under the letters", "larger objects behind the watermark",
    ),
}

ADJ = {
    "low": ("slight", "mild", "light"),
    "medium": ("moderate", "marked", "noticeable"),
    "high": ("severe", "heavy", "strong"),
}
PLURAL = frozenset({"scan lines"})
"""Degradation names that take a plural verb."""
LOSS = {
    "low": ("are only slightly softened", "lose a little crispness", "stay readable with some care"),
    "medium": ("become unreliable", "are partly obscured", "are hard to make out"),
    "high": ("are largely lost", "can no longer be trusted", "are effectively gone"),
}
KEEP = ("remain usable", "are still clear", "still carry the evidence", "survive the damage")

INFLUENCE_FORMS = (
    "{Adj} {name} ({s}): {effect}, so {hides} {loss}, while {keeps} {keep}.",
    "The {name} at {s} {is_} {adj}; {effect}. {Hides} {loss}, but {keeps} {keep}.",
    "With {adj} {name} ({s}), {effect}; {hides} {loss} and {keeps} {keep}.",
    "{Effect} ({name}, {s}): {hides} {loss}, whereas {keeps} {keep}.",
)
OVERALL = {
    "light": (
        "Taken together the damage is light, so most of the picture can be read directly.",
        "Overall the damage is mild and the scene stays easy to interpret.",
    ),
    "moderate": (
        "Together these effects are moderate: the coarse structure is intact, but small details need care.",
        "Overall the damage is moderate, so the reading should lean on robust cues rather than fine detail.",
    ),
    "heavy": (
        "Combined, the damage is heavy, so any answer has to rest on coarse, robust evidence rather than fine detail.",
        "Overall the picture is badly damaged, and only the most robust cues can be trusted.",
    ),
}
NO_DAMAGE_INFLUENCE = (
    "The picture shows no visible damage, so every detail can be read as usual.",
    "No degradation affects this picture; all of its details are reliable.",
)

OPENERS = (
    'The question asks: "{Q}"',
    'The task is to answer "{Q}"',
    'We need to answer: "{Q}"',
)
OPTIONS = ("The candidates are {opts}.", "The options to choose from are {opts}.")
COMPENSATE = (
    "Reading the scene as if it were clean, the {keeps} carry the evidence, so the {hides} hidden by the {main} "
    "are not needed.",
    "Setting the {main} aside, the {keeps} are what the answer can rest on; the damaged {hides} are not needed here.",
    "Compensating for the {main}, the reasoning starts from the {keeps}, which stay reliable, rather than the {hides}.",
)
COMPENSATE_SHORT = (
    "Reading past the {main}, the {keeps} still show the scene.",
    "Despite the {main}, the {keeps} stay visible.",
)
EVIDENCE = (
    "These cues match {ans}.",
    "What they show is consistent with {ans}.",
    "They point clearly to {ans}.",
)
FINAL = (
    "Therefore the answer is {ans}.",
    "So the answer is {ans}.",
    "Hence {ans} is the answer.",
)
PER_STEP = (
    "The {name} {does} not change the {keeps}, which still agree with {ans}.",
    "Although the {name} {affects} the {hides}, the {keeps} {it} {leaves} intact remain consistent with {ans}.",
)
REJECT_ONE = (
    "{opt} does not fit the visible evidence.",
    "{opt} is ruled out by the overall shapes and context.",
    "Nothing visible supports {opt}.",
)
REJECT_MANY = (
    "Neither {opts} nor {last} fits what is still visible.",
    "The visible evidence rules out {opts} and {last}.",
    "None of {opts} or {last} matches the surviving cues.",
)
CHECKS = (
    "The overall layout of the scene and the relations between the objects agree with {ans}.",
    "Nothing that survives the damage contradicts {ans}.",
    "The colours and shapes that are least affected by the damage match {ans}.",
    "A clean view of the same scene would show the same thing, so the damage changes how hard the question is, "
    "not its answer.",
    "The parts of the image hidden by the damage are not needed to recognise {ans}.",
    "Comparing the visible evidence with each possibility leaves {ans} as the best fit.",
    "The context of the picture makes {ans} the natural reading.",
    "The most reliable cues are the large structures, and they support {ans}.",
    "Fine details are uncertain here, so the decision rests on the coarse evidence, which favours {ans}.",
    "Checking the answer once more against the regions that are still clear confirms {ans}.",
    "The question can be settled from the coarse structure alone, without relying on damaged detail.",
    "If the damage were removed, the same evidence would only become sharper, not different.",
    "The scene as a whole is coherent only with {ans}.",
    "Each part of the picture that can still be trusted points the same way.",
    "There is no visible cue that would suggest a different answer.",
    "The relative sizes and positions of the main objects are preserved, and they fit {ans}.",
    "Brightness and outline information, which the damage barely touches, is enough to decide.",
    "Taking the damage into account rather than ignoring it avoids reading artefacts as content.",
)
CONCLUSION_FORMS = (
    "Despite the {main}, the visible evidence supports {ans}",
    "Reading past the {main}, the answer is {ans}",
    "The cues that survive the {main} lead to {ans}",
    "Even with the {main}, the scene is best explained by {ans}",
    "Compensating for the {main}, the answer is {ans}",
)
CONCLUSION_CLEAN = ("The clear picture shows {ans}", "The evidence in the undamaged picture supports {ans}")


def _rng(sample_id: str, part: str) -> random.Random:
    return random.Random(derive_seed(0, "template-writer", sample_id, part))


def _pick(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _words(s: str) -> int:
    return len(s.split())


def _quote(s: str) -> str:
    return f'"{" ".join(str(s).split())}"'


def _verbs(name: str) -> dict[str, str]:
    plural = name in PLURAL
    return {
        "is_": "are" if plural else "is",
        "does": "do" if plural else "does",
        "affects": "affect" if plural else "affects",
        "it": "they" if plural else "it",
        "leaves": "leave" if plural else "leaves",
    }


def _main(recipe: Recipe) -> Step | None:
    return max(recipe.steps, key=lambda s: s.intensity) if recipe.steps else None


def _damage_level(total: float) -> str:
    return "light" if total < 0.8 else ("moderate" if total < 1.8 else "heavy")


def influence(recipe: Recipe, sample_id: str) -> str:
    """One sentence per degradation (op × intensity band) and one on the overall damage."""
    rng = _rng(sample_id, "influence")
    if not recipe.steps:
        return _pick(rng, NO_DAMAGE_INFLUENCE)
    sentences = []
    for step in recipe.steps:
        op = OPS[step.name]
        b = band(step.intensity)
        adj = _pick(rng, ADJ[b])
        effect = _pick(rng, op.effect[b])
        sentences.append(
            _pick(rng, INFLUENCE_FORMS).format(
                Adj=_cap(adj), adj=adj, name=step.name, s=f"{step.intensity:.2f}", effect=effect, Effect=_cap(effect),
                hides=op.hides, Hides=_cap(op.hides), loss=_pick(rng, LOSS[b]), keeps=op.keeps, keep=_pick(rng, KEEP),
                **_verbs(step.name),
            )
        )
    sentences.append(_pick(rng, OVERALL[_damage_level(recipe.total_intensity)]))
    return " ".join(sentences)


def reasoning(
    recipe: Recipe, sample_id: str, question: str, choices: Sequence[str], answer_text: str, target: int
) -> str:
    """Reasoning of about ``target`` words (within ±10 % whenever possible, always within ±25 %)."""
    rng = _rng(sample_id, "reasoning")
    ans = _quote(answer_text)
    q = " ".join(str(question).split())
    main = _main(recipe)
    if main is not None:
        op = OPS[main.name]
        ctx = {"main": main.name, "keeps": op.keeps, "hides": op.hides, "ans": ans}
    else:
        ctx = {"main": "missing damage", "keeps": "details of the picture", "hides": "details", "ans": ans}
    opener = _pick(rng, OPENERS).format(Q=q)
    others = [c for c in choices if " ".join(str(c).split()).lower() != " ".join(answer_text.split()).lower()]
    options = _pick(rng, OPTIONS).format(opts=", ".join(_quote(c) for c in choices)) if choices else None
    if main is not None:
        compensate = _pick(rng, COMPENSATE).format(**ctx)
        compensate_short = _pick(rng, COMPENSATE_SHORT).format(**ctx)
    else:
        compensate = "The picture is clean, so every detail can be used directly."
        compensate_short = "The picture is clean."
    evidence = _pick(rng, EVIDENCE).format(**ctx)
    final = _pick(rng, FINAL).format(**ctx)

    hi = target * 1.1
    # Cores from the fullest to the most compact: the first that fits under the upper bound wins.
    ladder = [
        [opener, options, compensate, evidence],
        [opener, compensate, evidence],
        [opener, compensate_short, evidence],
        [compensate_short, evidence],
        [compensate_short],
    ]
    core: list[str] = []
    for cand in ladder:
        core = [c for c in cand if c]
        if sum(map(_words, core)) + _words(final) <= hi:
            break

    # Extra sentences, each relevant: per degradation (strongest first), rejected options, checks.
    extras: list[str] = []
    for step in sorted(recipe.steps, key=lambda s: -s.intensity):
        op = OPS[step.name]
        form = _pick(rng, PER_STEP)
        extras.append(form.format(name=step.name, keeps=op.keeps, hides=op.hides, ans=ans, **_verbs(step.name)))
    if len(others) == 1:
        rejects = [_pick(rng, REJECT_ONE).format(opt=_quote(others[0]))]
    elif others:
        quoted = [_quote(o) for o in others]
        rejects = [_pick(rng, REJECT_MANY).format(opts=", ".join(quoted[:-1]), last=quoted[-1])]
    else:
        rejects = []
    checks = [c.format(ans=ans) for c in CHECKS]
    rng.shuffle(checks)
    pool = rejects + extras + checks
    if options is not None and options not in core:
        pool.insert(0, options)

    n = sum(map(_words, core)) + _words(final)
    chosen: list[str] = []
    for sent in pool:
        if n >= target * 0.97:
            break
        w = _words(sent)
        if n + w <= hi:
            chosen.append(sent)
            n += w
    # Keep a natural order: options first, then rejections, per-degradation sentences, checks.
    body = core[:]
    if options in chosen:
        body.insert(1 if body and body[0] == opener else 0, options)
        chosen.remove(options)
    return " ".join(body + chosen + [final])


def conclusion(recipe: Recipe, sample_id: str, answer: str, answer_text: str, choices: Sequence[str]) -> str:
    """One sentence stating the answer (and its option number for multiple choice)."""
    rng = _rng(sample_id, "conclusion")
    ans = _quote(answer_text)
    main = _main(recipe)
    if main:
        text = _pick(rng, CONCLUSION_FORMS).format(main=main.name, ans=ans)
    else:
        text = _pick(rng, CONCLUSION_CLEAN).format(ans=ans)
    if choices:
        text += f" (option {answer})"
    return text + "."


class TemplateBackend:
    """The ``template`` backend of :mod:`factory.chains.backends` (a ``ChainBackend``): the three
    fields from :func:`influence`, :func:`reasoning` and :func:`conclusion`, validated like an
    LLM's (a template that cannot reach the target length fails its sample)."""

    usage = None

    def __init__(self, cfg: Any):
        self.tolerance = cfg.length_tolerance

    async def write(self, req: Any, target: int) -> tuple[str, str, str]:
        infl = influence(req.recipe, req.sample_id)
        reas = reasoning(req.recipe, req.sample_id, req.question, req.choices, req.answer_text, target)
        concl = conclusion(req.recipe, req.sample_id, str(req.answer), req.answer_text, req.choices)
        for reason in (
            check_text("influence", infl),
            check_length(reas, target, self.tolerance),
            check_conclusion(concl, req.answer_text, str(req.answer), req.choices),
        ):
            if reason:
                raise SampleFailed(reason)
        return infl, reas, concl

    async def aclose(self) -> None:
        pass
