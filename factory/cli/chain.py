"""``robust-r1 chain``: degrade one image with the train recipe and write its chain."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from .common import EXIT_INCOMPLETE, EXIT_NOTHING, LLM, STYLE, Command, add_command, chain_config, style_or_default


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _spread_choices(args: list[str]) -> list[str]:
    """``--choices A B C D`` → ``--choices A --choices B --choices C --choices D``.

    Values after ``--choices`` are taken until the next option (a token starting with ``-``,
    except a bare ``-`` or a negative number); ``--choices=X`` stays one value.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out += args[i:]
            break
        if tok == "--choices":
            i += 1
            taken = 0
            while i < len(args) and (not args[i].startswith("-") or args[i] == "-" or _is_number(args[i])):
                out += ["--choices", args[i]]
                i += 1
                taken += 1
            if taken == 0:
                out.append(tok)  # let the parser report the missing value
            continue
        out.append(tok)
        i += 1
    return out


class ChainCommand(Command):
    """Accepts ``--choices A B C D`` (space-separated) besides repeated or comma-separated forms."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = _spread_choices(list(args))
        takes_value = {o for p in self.params if p.param_type_name == "option" and not p.is_flag for o in p.opts}
        # IMAGE written after the choices was eaten as the last choice: give it back.
        positional = [
            a for j, a in enumerate(args) if not a.startswith("-") and (j == 0 or args[j - 1] not in takes_value)
        ]
        if not positional and len(args) >= 2 and args[-2] == "--choices" and os.path.isfile(args[-1]):
            args = args[:-2] + [args[-1]]
        return super().parse_args(ctx, args)


def _choices(values: list[str] | None) -> list[str]:
    vals = [v for v in (values or []) if v.strip()]
    if len(vals) == 1 and "," in vals[0]:  # --choices "a dog,a cat,a bird"
        vals = vals[0].split(",")
    return [" ".join(c.split()) for c in vals if c.strip()]


def chain(
    image: Path = typer.Argument(..., help="An image file.", show_default=False),
    question: str = typer.Option(..., "--question", "-q", help="The question about the image."),
    answer: str = typer.Option(
        ...,
        "--answer",
        "-a",
        help="Ground truth: for multiple choice the option index (0, 1, ...), its letter or its text; else the answer.",
    ),
    choices: list[str] | None = typer.Option(
        None,
        "--choices",
        help="Options of a multiple-choice question: --choices A B C D (or repeated, or comma-separated).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the train recipe."),
    backend: str = LLM.backend,
    base_url: str | None = LLM.base_url,
    model: str | None = LLM.model,
    cache: Path | None = LLM.cache,
    prompts: Path | None = LLM.prompts,
    no_vision: bool = LLM.no_vision,
    concurrency: int = LLM.concurrency,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: degradations and the chain fields."),
    style: str | None = STYLE,
) -> None:
    """Degrade one image with the train recipe and print the recipe and the full chain.

    The key of the openai backend is read from OPENAI_API_KEY (never printed).
    """
    from factory.chains.writer import request_from_image, write_chains
    from factory.sources import decode_image

    img = decode_image(image)
    req = request_from_image(
        img,
        question=question,
        answer=answer,
        choices=_choices(choices),
        seed=seed,
        sample_id=f"chain:{image.name}",
        style=style_or_default(style),
    )
    cfg = chain_config(backend, model, base_url, concurrency, cache, prompts, no_vision, seed=seed)
    report = write_chains([req], cfg)
    res = report[0]
    if not res.ok:
        again = "; the LLM service failed: fix it and run the same command again" if res.retry else ""
        typer.echo(f"error: {image}: chain failed: {res.reason}{again}", err=True)
        raise typer.Exit(EXIT_INCOMPLETE if res.retry else EXIT_NOTHING)
    degs = req.recipe.degradation_records()
    for d in degs:
        d["params"] = json.loads(d["params"])
    if as_json:
        out = {"id": req.sample_id, "degradations": degs, "total_intensity": req.recipe.total_intensity, **res.fields()}
        if report.usage:
            out["usage"] = report.usage
            out["cost_usd"] = report.cost_usd
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"recipe (seed {seed}, {len(degs)} degradations, total intensity {req.recipe.total_intensity:.2f}, "
        f"target {res.target_words} reasoning words):"
    )
    for d in degs:
        typer.echo(f"  {d['stage']:16s} {d['name']:24s} {d['intensity']:.2f}  ({d['params'].get('style', '')} style)")
    typer.echo("")
    typer.echo(res.solution)
    if report.usage:
        u = report.usage
        cost = f", cost ${report.cost_usd:.4f}" if report.cost_usd is not None else ""
        typer.echo(
            f"\n{res.backend}: {u['requests']} requests ({u['retries']} retries), {u['cached']} cached, "
            f"{u['prompt_tokens']} + {u['completion_tokens']} tokens{cost}"
        )


def register(app: typer.Typer) -> None:
    """Add ``chain`` to ``app``."""
    add_command(app, "chain", chain, cls=ChainCommand)
