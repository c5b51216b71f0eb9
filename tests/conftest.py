import sys
from pathlib import Path

# Test helpers (fake LLM server, dataset fixtures) live next to the tests.
sys.path.insert(0, str(Path(__file__).parent))
