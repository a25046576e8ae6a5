"""The handler service that Multi Model Server loads for each model of the real-stack local endpoint.

Why it exists: in multi-model mode the stock ``sagemaker_inference.default_handler_service`` cannot import a
model's ``code/inference.py``. Its ``initialize`` only prepends ``<model_dir>/code`` to
``os.environ["PYTHONPATH"]``, which a running worker process never reads again, and the toolkit's start path puts
only ``<base>/models/code`` on ``PYTHONPATH``. The ``Transformer`` then does not find ``inference``, falls back to
``default_model_fn``, registration still answers 200 "Workers scaled", and every invoke fails with
``500 Please provide a model_fn implementation.``

The framework containers fix this in their own handler service: with ``SAGEMAKER_MULTI_MODEL=true``,
``sagemaker_pytorch_serving_container.handler_service.HandlerService.initialize`` appends ``<model_dir>/code`` to
``sys.path`` once, before calling ``DefaultHandlerService.initialize``, which makes the ``Transformer`` validate the
user module and run ``model_fn``. This class does the same, with the toolkit's plain ``Transformer`` (the PyTorch
container's transformer and default handlers only add defaults that ``inference.py`` overrides anyway).

Each model runs in its own worker processes, so every model imports its own ``inference`` module from its own
``code/`` folder. MMS instantiates the single class that this module defines (it refuses a module defining more than
one, and would call a module-level ``handle`` function instead if there were one), so keep it that way.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer


class HandlerService(DefaultHandlerService):  # type: ignore[misc]  # the toolkit is untyped
    """``DefaultHandlerService`` that makes ``<model_dir>/code`` importable in multi-model mode."""

    def __init__(self) -> None:
        self._initialized = False
        super().__init__(transformer=Transformer())

    def initialize(self, context: Any) -> None:
        """Put ``<model_dir>/code`` on ``sys.path``, then validate the user module and run ``model_fn``."""
        if not self._initialized and os.environ.get("SAGEMAKER_MULTI_MODEL", "false") == "true":
            code_dir = os.path.join(context.system_properties.get("model_dir"), "code")
            if code_dir not in sys.path:
                sys.path.append(code_dir)
            self._initialized = True
        super().initialize(context)
