"""Secrets: find them, redact them, keep them out of everything written or uploaded.

Two kinds of secret are recognised:

* **live secrets**: the values of the environment variables that hold credentials
  (``OPENAI_API_KEY``, ``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN`` and any variable whose name ends in
  ``_API_KEY``, ``_TOKEN``, ``_SECRET`` or ``_PASSWORD``), plus any value passed in explicitly;
* **credential-shaped strings**: OpenAI/Hugging Face/GitHub/AWS/Slack key formats, bearer tokens,
  and credentials embedded in URLs (``https://user:pass@host``, ``?api_key=...``).

Every writer of the project (build rows, chain cache, build.json, cards, eval outputs, publish)
runs its text through :func:`find_secrets` or :func:`redact`; a secret is never printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Environment variables always treated as secrets.
SECRET_ENV_VARS = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN")
_SECRET_NAME = re.compile(r"(?:_API_KEY|_TOKEN|_SECRET|_PASSWORD|_ACCESS_KEY)$", re.IGNORECASE)
#: Shorter environment values are not treated as secrets (too many false positives: "1", "true").
MIN_SECRET_LENGTH = 8
MASK = "***"

#: Credential-shaped strings, whatever the environment holds.
SECRET_RE = re.compile(
    r"(hf_[A-Za-z0-9]{30,}"
    r"|sk-[A-Za-z0-9_\-]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{20,}"
    r"|(?i:api[_-]?key|token|secret|password)[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9._\-]{16,})"
)
# user:password@ (or token@) in a URL's authority
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
_KEY_PARAM = re.compile(r"(?i)^(api[_-]?key|key|token|access[_-]?token|secret|password|sig|signature)$")


def live_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """The secret values currently in the environment (and ``extra``), longest first."""
    values = {os.environ.get(k) for k in SECRET_ENV_VARS}
    values.update(v for k, v in os.environ.items() if _SECRET_NAME.search(k))
    values.update(extra)
    return sorted((v for v in values if v and len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def find_secrets(text: str, extra: Iterable[str | None] = ()) -> list[str]:
    """What kinds of secret ``text`` holds: ``["live secret", "credential pattern", "URL credentials"]``.

    The secret itself is never returned (so the result can be printed).
    """
    kinds = []
    if any(s in text for s in live_secrets(extra)):
        kinds.append("live secret")
    if SECRET_RE.search(text):
        kinds.append("credential pattern")
    if _URL_USERINFO.search(text):
        kinds.append("URL credentials")
    return kinds


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with live secrets, the given ``secrets``, credential patterns and URL credentials masked."""
    for s in live_secrets(secrets):
        text = text.replace(s, MASK)
    text = SECRET_RE.sub(MASK, text)
    return _URL_USERINFO.sub(lambda m: m.group("scheme"), text)


def redact_url(url: str | None) -> str | None:
    """A URL without its credentials: ``user:pass@`` removed, key-like query values masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _KEY_PARAM.match(k) else v) for k, v in pairs], safe="*")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
