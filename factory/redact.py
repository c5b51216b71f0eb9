"""Former home of secret scrubbing, kept so old imports keep working: use :mod:`factory.secrets`."""

from __future__ import annotations

from factory.secrets import SECRET_RE, find_secrets, live_secrets, redact, redact_url

__all__ = ["SECRET_RE", "find_secrets", "live_secrets", "redact", "redact_url"]
