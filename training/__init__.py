"""Trains the creative-scoring models and packages them as SageMaker model archives."""

import sys
from pathlib import Path

INFERENCE_DIR = Path(__file__).resolve().parent.parent / "inference"

# The serving container imports the handler modules from <model_dir>/code as top-level modules
# (`import inference`, `import creative_scorers`); training imports the very same files the same way.
if str(INFERENCE_DIR) not in sys.path:
    sys.path.insert(0, str(INFERENCE_DIR))
