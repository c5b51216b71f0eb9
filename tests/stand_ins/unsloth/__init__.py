"""Stand-in for ``unsloth`` 2026.10.9 in CPU tests (see tests/stand_ins/README.md).

Import-time behaviour mimicked from the real package:

* ``unsloth/_gpu_init.py``: ``critical_modules = ["trl", "transformers", "peft"]`` and
  ``already_imported = [mod for mod in critical_modules if mod in sys.modules]`` are computed first;
  when any was imported before Unsloth, it *warns* ("Unsloth should be imported before [...]") and
  goes on, leaving code that already bound the unpatched objects unpatched.
* ``UNSLOTH_IS_PRESENT=1`` is set (``unsloth/__init__.py``).
* TRL is patched at import (``_gpu_init.py`` → ``models/llama.py``'s ``PatchFastRL`` →
  ``models/rl.py``): see :mod:`unsloth.trainer`.
"""

from __future__ import annotations

import os
import sys
import warnings

from ._record import record

critical_modules = ["trl", "transformers", "peft"]
already_imported = [mod for mod in critical_modules if mod in sys.modules]
record("import", already_imported=already_imported)
if already_imported:
    warnings.warn(
        f"WARNING: Unsloth should be imported before [{', '.join(already_imported)}] "
        f"to ensure all optimizations are applied. Your code may run slower or encounter "
        f"memory issues without these optimizations.\n\n"
        f"Please restructure your imports with 'import unsloth' at the top of your file.",
        stacklevel=2,
    )
del critical_modules

os.environ["UNSLOTH_IS_PRESENT"] = "1"
__version__ = "2026.10.9"

from .models import FastModel, FastVisionModel  # noqa: E402
from .trainer import patch_trl  # noqa: E402

patch_trl()

__all__ = ["FastModel", "FastVisionModel", "__version__"]
