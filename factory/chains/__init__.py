"""Reasoning chains: the tagged format and the writers that produce it.

* :mod:`factory.chains.format`: render and parse the chain (the contract of factory, trainers
  and evaluation).
* :mod:`factory.chains.writer`: write chains with the ``template`` (offline) or ``openai``
  (any OpenAI-compatible server) backend: ``write_chains(requests, ChainConfig(...))``.
* :mod:`factory.chains.backends`: the backend registry (``register_backend``), the chat-backend
  protocol, and ``open_chat`` / ``ask`` / ``run_sync`` to send image + text messages to a model.
* :mod:`factory.chains.prompting`: the Jinja prompts, ``build_prompt``, ``format_question``,
  ``target_words``.

The writer names are loaded lazily (``from factory.chains import write_chains`` works) so that
importing the format stays light.
"""

from .format import (
    FIELDS,
    NO_DAMAGE,
    TAGS,
    ParsedChain,
    TypePair,
    format_intensity,
    format_type,
    has_tags,
    parse_chain,
    parse_type,
    render_chain,
    strip_tags,
)

_LAZY = {
    "ChainConfig": "writer",
    "ChainRequest": "writer",
    "ChainResult": "writer",
    "BatchReport": "writer",
    "write_chains": "writer",
    "awrite_chains": "writer",
    "request_from_image": "writer",
    "build_prompt": "prompting",
    "format_question": "prompting",
    "render_prompt": "prompting",
    "target_words": "prompting",
}

__all__ = [
    "FIELDS",
    "NO_DAMAGE",
    "TAGS",
    "ParsedChain",
    "TypePair",
    "format_intensity",
    "format_type",
    "has_tags",
    "parse_chain",
    "parse_type",
    "render_chain",
    "strip_tags",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
