"""Runs a user's ``inference.py`` with the SageMaker inference toolkit's per-request semantics.

What it copies from the toolkit (``sagemaker_inference.transformer``):
- handler resolution: ``transform_fn`` may not be combined with ``input_fn``/``predict_fn``/``output_fn``;
  a module that omits one of ``model_fn``, ``input_fn``, ``predict_fn`` or ``output_fn`` gets the toolkit's
  default (``DefaultInferenceHandler``: NumPy decoding and encoding; the default ``model_fn`` and ``predict_fn``
  raise ``NotImplementedError``); ``pre_model_fn`` and ``model_warmup_fn`` run around ``model_fn``;
- the optional trailing ``context`` argument, detected by counting parameters;
- a missing or ``*/*`` Accept becomes the default accept (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``);
- the body is ``str`` for exactly ``application/json`` or ``text/csv`` and ``bytes`` otherwise, decoded inside
  the error handling, so a body that is not UTF-8 is a 500 from the model, as the toolkit answers;
- ``output_fn`` may return ``(body, content_type)``; otherwise the response type is the Accept value;
- a ``BaseInferenceToolkitError`` becomes its ``status_code`` and ``message``; any other exception is a 500
  whose message is ``str(exception)`` (``GenericInferenceToolkitError``).

The toolkit sends ``"{message}\\n{traceback}"`` as the error body; here the two stay apart in `Response`, so
that the caller decides where the traceback goes (the model server's wire body, the endpoint's log).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from sagemaker_inference.errors import BaseInferenceToolkitError

DEFAULT_ACCEPT = "application/json"
UTF8_TYPES = ("application/json", "text/csv")
HANDLERS = ("model_fn", "input_fn", "predict_fn", "output_fn")


class HandlerError(ValueError):
    """A user module that the toolkit would refuse to run."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str | None
    trace: str | None = None  # the handler's traceback, on an error

    def wire_body(self) -> bytes:
        """The body as the toolkit sends it: on an error, the message, a newline and the traceback."""
        return self.body if self.trace is None else self.body + b"\n" + self.trace.encode("utf-8", "replace")


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
    """The handler functions of one user module, called the way the toolkit calls them."""

    def __init__(self, module: ModuleType, default_accept: str = DEFAULT_ACCEPT) -> None:
        found = {name: getattr(module, name, None) for name in HANDLERS}
        self.transform_fn: Callable[..., Any] | None = getattr(module, "transform_fn", None)
        if self.transform_fn is not None and any(found[name] for name in HANDLERS[1:]):
            raise HandlerError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                "and/or output_fn implementation"
            )
        self.model_fn, self.input_fn, self.predict_fn, self.output_fn = (
            fn or _default(name) for name, fn in found.items()
        )
        self.pre_model_fn: Callable[..., Any] | None = getattr(module, "pre_model_fn", None)
        self.model_warmup_fn: Callable[..., Any] | None = getattr(module, "model_warmup_fn", None)
        self.default_accept = default_accept

    def load(self, model_dir: Path, context: Any = None) -> Any:
        """``pre_model_fn``, ``model_fn`` and ``model_warmup_fn``, as the toolkit initializes a worker."""
        if self.pre_model_fn is not None:
            _call(self.pre_model_fn, (str(model_dir),), context)
        model = _call(self.model_fn, (str(model_dir),), context)
        if self.model_warmup_fn is not None:
            _call(self.model_warmup_fn, (str(model_dir), model), context)
        return model

    def invoke(
        self, model: Any, body: bytes, content_type: str | None, accept: str | None, context: Any = None
    ) -> Response:
        """Run the chain on one request; handler exceptions become the response status, never a raise."""
        accept = self.default_accept if not accept or accept == "*/*" else accept
        try:
            data: str | bytes = body.decode("utf-8") if content_type in UTF8_TYPES else body
            result = self._transform(model, data, content_type, accept, context)
            payload, response_type = result if isinstance(result, tuple) else (result, accept)
            encoded = payload.encode() if isinstance(payload, str) else bytes(payload)
        except Exception as e:  # the toolkit's boundary: every handler failure becomes a status code
            status, message = _status_and_message(e)
            return Response(status, message.encode("utf-8", "replace"), None, traceback.format_exc())
        return Response(200, encoded, response_type)

    def _transform(self, model: Any, data: str | bytes, content_type: str | None, accept: str, context: Any) -> Any:
        if self.transform_fn is not None:
            return _call(self.transform_fn, (model, data, content_type, accept), context)
        features = _call(self.input_fn, (data, content_type), context)
        prediction = _call(self.predict_fn, (features, model), context)
        return _call(self.output_fn, (prediction, accept), context)


def _status_and_message(error: Exception) -> tuple[int, str]:
    if isinstance(error, BaseInferenceToolkitError):
        return int(error.status_code), str(error.message)
    return 500, str(error) or "Invalid Request"  # GenericInferenceToolkitError(500, str(e))


def _default(name: str) -> Callable[..., Any]:
    return getattr(_default_handler(), f"default_{name}")  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)  # the toolkit inspects every call; the answer never changes, and inspecting costs 30 us
def _arity(fn: Callable[..., Any]) -> int:
    return len(inspect.signature(fn).parameters)


@cache
def _default_handler() -> Any:
    # Imported on first need: the toolkit's decoders import SciPy, which a module with its own handlers never uses.
    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler

    return DefaultInferenceHandler()


def _call(fn: Callable[..., Any], args: tuple[Any, ...], context: Any) -> Any:
    count = _arity(fn)
    if count == len(args):
        return fn(*args)
    if count == len(args) + 1:
        return fn(*args, context)
    raise TypeError(f"{fn.__name__} takes {count} arguments but {len(args)} were given.")
