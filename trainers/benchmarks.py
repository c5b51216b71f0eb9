"""Former home of the evaluation benchmarks, now :mod:`trainers.eval.benchmarks` (re-exported here
so ``from trainers.benchmarks import ...`` keeps working)."""

from trainers.eval.benchmarks import *  # noqa: F403
from trainers.eval.benchmarks import __all__  # noqa: F401
