"""Secret scrubbing: what goes into a card, an error message, a log line or an upload check.

Secrets (``HF_TOKEN``, ``OPENAI_API_KEY``) come from the environment only; these helpers make sure
that nothing derived from them (a command line, a URL with a password, an exception text) is
written or printed.
"""

from __future__ import annotations

import re

SECRET_RE = re.compile(
    r"(hf_[A-Za-z0-9]{30,}"
    r"|sk-[A-Za-z0-9_\-]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{20,}"
    r"|://[^/\s:@]+:[^/\s@]+@"
    r"|(?i:api[_-]?key|token|secret|password)[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9._\-]{16,})"
)
"""Strings that look like credentials (HF, OpenAI, AWS, GitHub, Slack tokens, bearer headers,
passwords in URLs, ``api_key=...``)."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the given secrets and anything credential-looking replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return SECRET_RE.sub("***", text)


def redact_url(url: object) -> object:
    """A URL without its ``user:password@`` part (anything else is returned as is)."""
    if isinstance(url, str):
        return re.sub(r"(//)[^/@]+@", r"\1", url)
    return url
