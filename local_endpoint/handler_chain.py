"""Runs a user's ``inference.py`` with the SageMaker inference toolkit's per-request semantics.

What it copies from the toolkit (``sagemaker_inference.transformer``):
- handler resolution: ``transform_fn`` may not be combined with ``input_fn``/``predict_fn``/``output_fn``;
- the optional trailing ``context`` argument, detected by counting parameters;
- a missing or ``*/*`` Accept becomes the default accept (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``);
- the body is ``str`` for exactly ``application/json`` or ``text/csv`` and ``bytes`` otherwise;
- ``output_fn`` may return ``(body, content_type)``; otherwise the response type is the Accept value;
- an exception with an integer ``status_code`` becomes that status, any other becomes 500.

Unlike the toolkit, it never puts a traceback in the response body: the message alone goes to the client.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_ACCEPT = "application/json"
UTF8_TYPES = ("application/json", "text/csv")


class HandlerError(ValueError):
    """A user module that the toolkit would refuse to run."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str | None


def import_handler(code_dir: Path, module: str = "inference") -> ModuleType:
    """Import ``module`` from ``code_dir`` as the container does, fresh even if a same-named module was loaded.

    Each model server worker imports the code of its own model; clearing the cached modules of ``code_dir``
    gives the same isolation in one process.
    """
    for name in [p.stem for p in code_dir.glob("*.py")]:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(code_dir))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(code_dir))


class HandlerChain:
    """The four handler functions of one user module, called the way the toolkit calls them."""

    def __init__(self, module: ModuleType, default_accept: str = DEFAULT_ACCEPT) -> None:
        found = {name: getattr(module, name, None) for name in ("input_fn", "predict_fn", "output_fn")}
        self.transform_fn: Callable[..., Any] | None = getattr(module, "transform_fn", None)
        if self.transform_fn is not None and any(found.values()):
            raise HandlerError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                "and/or output_fn implementation"
            )
        missing = [name for name, fn in {"model_fn": getattr(module, "model_fn", None), **found}.items() if not fn]
        if self.transform_fn is None and missing:
            raise HandlerError(f"{module.__file__} does not define {', '.join(missing)}")
        self.model_fn: Callable[..., Any] = module.model_fn
        self.input_fn, self.predict_fn, self.output_fn = (fn or _unused for fn in found.values())
        self.default_accept = default_accept

    def load(self, model_dir: Path, context: Any = None) -> Any:
        return _call(self.model_fn, (str(model_dir),), context)

    def invoke(
        self, model: Any, body: bytes, content_type: str | None, accept: str | None, context: Any = None
    ) -> Response:
        """Run the chain on one request; handler exceptions become the response status, never a raise."""
        accept = self.default_accept if not accept or accept == "*/*" else accept
        data: str | bytes = body.decode("utf-8") if content_type in UTF8_TYPES else body
        try:
            result = self._transform(model, data, content_type, accept, context)
        except Exception as e:  # the toolkit's boundary: every handler failure becomes a status code
            status = getattr(e, "status_code", None)
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            return Response(status if isinstance(status, int) else 500, str(message).encode(), None)
        payload, response_type = result if isinstance(result, tuple) else (result, accept)
        return Response(200, payload.encode() if isinstance(payload, str) else bytes(payload), response_type)

    def _transform(self, model: Any, data: str | bytes, content_type: str | None, accept: str, context: Any) -> Any:
        if self.transform_fn is not None:
            return _call(self.transform_fn, (model, data, content_type, accept), context)
        features = _call(self.input_fn, (data, content_type), context)
        prediction = _call(self.predict_fn, (features, model), context)
        return _call(self.output_fn, (prediction, accept), context)


def _unused(*args: Any) -> Any:
    raise AssertionError("transform_fn replaces input_fn, predict_fn and output_fn")


def _call(fn: Callable[..., Any], args: tuple[Any, ...], context: Any) -> Any:
    count = len(inspect.signature(fn).parameters)
    if count == len(args):
        return fn(*args)
    if count == len(args) + 1:
        return fn(*args, context)
    raise TypeError(f"{fn.__name__} takes {count} arguments but {len(args)} were given.")
