"""Errors shared by the library and the command line.

A library error names the *config field* it is about (``workers``, ``shard_size``); the CLI maps
fields to its flags (``--workers``) in one place, so messages read naturally from both the Python
API and the command line.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot be used.

    ``field`` is the dataclass field (or function argument) at fault, ``value`` what was given and
    ``fix`` what to do instead. ``str(err)`` is a complete sentence naming all three:
    ``workers 0: must be >= 1`` (``--workers 0: must be >= 1`` through :meth:`for_flag`).
    """

    def __init__(self, field: str, message: str, *, value: object = None, fix: str | None = None) -> None:
        self.field = field
        self.value = value
        self.fix = fix
        self.message = message
        super().__init__(self._render(field))

    def _render(self, name: str) -> str:
        head = name if self.value is None else f"{name} {self.value!r}"
        text = f"{head}: {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text

    def for_flag(self, flag: str) -> str:
        """The same message with the field replaced by the CLI flag that sets it."""
        return self._render(flag)


class InputError(ValueError):
    """Bad input data (a file, a row, a cell): the message names the input and the fix."""


class ServiceError(RuntimeError):
    """A remote service (the Hugging Face Hub, an LLM server) failed for good, after retries.

    The message is scrubbed of secrets and says what to try; the CLI prints it as one error line.
    """
