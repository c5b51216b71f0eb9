"""Reasoning chains: the tagged format and the writers that produce it."""

from .format import (
    FIELDS,
    TAGS,
    ParsedChain,
    TypePair,
    format_intensity,
    format_type,
    parse_chain,
    parse_type,
    render_chain,
)

__all__ = [
    "FIELDS",
    "TAGS",
    "ParsedChain",
    "TypePair",
    "format_intensity",
    "format_type",
    "parse_chain",
    "parse_type",
    "render_chain",
]
