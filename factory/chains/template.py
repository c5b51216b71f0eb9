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

from factory.degrade import DEFAULT_STYLE, get
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


def op_text(name: str, style: str = DEFAULT_STYLE) -> OpText:
    """Wording of degradation ``name`` as drawn in ``style``: it lives in the catalogue, next to
    the op it describes (:meth:`factory.degrade.Degradation.influence`), so it matches the pixels."""
    w = get(name).influence(style)
    return OpText(dict(w.effect), w.hides, w.keeps)


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
        op = op_text(step.name, step.style)
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
        op = op_text(main.name, main.style)
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
        op = op_text(step.name, step.style)
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
