"""Former home of the robustness evaluation, now the :mod:`trainers.eval` package (re-exported
here so ``from trainers.evaluate import ...`` keeps working)."""

from trainers.eval import *  # noqa: F403
from trainers.eval import __all__  # noqa: F401
