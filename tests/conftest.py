import os
import sys
from pathlib import Path

# Test helpers (fake LLM server, dataset fixtures) live next to the tests.
sys.path.insert(0, str(Path(__file__).parent))

# Without a GPU, TRL's Triton kernels must run interpreted. It has to be set before anything
# imports triton (any test importing TRL would), so it is set here, at collection.
if not Path("/dev/nvidia0").exists():
    os.environ.setdefault("TRITON_INTERPRET", "1")
