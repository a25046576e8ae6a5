"""Trains the creative-scoring models and packages them as SageMaker model archives.

Training runs the very handler modules the serving container runs, imported as the container imports them: from
the code folder (``inference/``), as top-level modules (``import creative_scorers``). They are imported here once,
so that the modules of this package import them by name; the import path is left as it was.
"""

from creative_scoring.artifacts.handler_chain import import_handler
from creative_scoring.paths import INFERENCE_DIR

import_handler(INFERENCE_DIR, "creative_scorers")  # and creative_schema, which it imports
