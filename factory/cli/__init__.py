"""The ``robust-r1`` command line: a thin layer over the Python API.

One module per command group, each with ``register(app)``:

==================  ==============================================================
module              commands
==================  ==============================================================
``degrade``         ``degradations``, ``degrade``, ``demo``
``build``           ``build``
``chain``           ``chain``
``dataset``         ``report``, ``card``, ``publish``, ``export``
``train``           ``train sft``, ``train grpo``, ``infer``
``evaluate``        ``eval``, ``eval-compare``
``studio``          ``studio``
==================  ==============================================================

:mod:`factory.cli.common` holds what they share: the one error handler (``Command``: a
``ConfigError`` becomes ``error: --flag VALUE: message`` through ``FIELD_FLAGS``; ``ValueError``,
``OSError`` and ``ServiceError`` become ``error: message``; exit status 2), the shared option
groups and the helpers. Only typer is imported here; the library loads when a command runs.
"""

from __future__ import annotations

import logging
import sys

import typer

from . import build, chain, dataset, degrade, evaluate, studio, train

app = typer.Typer(
    name="robust-r1",
    help="Robust-R1: degradation-aware reasoning data, training and evaluation for VLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GROUPS = (degrade, build, chain, dataset, train, evaluate, studio)
"""The command modules, in the order their commands are listed."""


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


for _group in GROUPS:
    _group.register(app)


def main() -> None:
    """The ``robust-r1`` script."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
