"""SageMaker inference handlers for the creative-scoring models.

The SageMaker PyTorch serving container imports this module from ``<model_dir>/code`` and calls, per request,
``output_fn(predict_fn(input_fn(body, content_type), model), accept)`` on the model that ``model_fn`` loaded.

Requests:
    ``application/json``: ``{"instances": [creative, ...]}`` or a single creative object.
    ``application/jsonlines``: one creative object per line (batch transform with ``SplitType: Line``).

Responses:
    ``application/json``: ``{"predictions": [prediction, ...]}``.
    ``application/jsonlines``: one prediction per line.
    A prediction is ``{"creative_id": ..., "score": 0.73, "model": "creative-scorer-v1", "model_version": "1.0.0"}``.

Client mistakes raise errors carrying an HTTP status (400, 415) that the toolkit returns to SageMaker, which
relays them as a ``ModelError`` with that ``OriginalStatusCode``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from http import HTTPStatus
from itertools import repeat
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch

from creative_schema import CHANNELS, CreativeBatch, InvalidRequest, decode_json, decode_jsonlines
from creative_scorers import Scorer, load_scorer

try:
    from sagemaker_inference.errors import BaseInferenceToolkitError
except ImportError:  # outside the serving container: the same constructor and attributes

    class BaseInferenceToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


JSON = "application/json"
JSONLINES = "application/jsonlines"
DEFAULT_ACCEPT = JSON

MAX_INSTANCES_ENV = "CREATIVE_SCORER_MAX_INSTANCES"
# Real-time requests stay small for latency; a batch transform job (SageMaker sets SAGEMAKER_BATCH=true)
# packs as many records as fit in its MaxPayloadInMB, up to about 12,000 creatives in 6 MB.
_BATCH = os.environ.get("SAGEMAKER_BATCH") == "true"
MAX_INSTANCES = int(os.environ.get(MAX_INSTANCES_ENV, "100000" if _BATCH else "1000"))


class Prediction(msgspec.Struct, frozen=True, gc=False):
    """One creative's score, as the response carries it."""

    creative_id: str | None
    score: float
    model: str
    model_version: str


class InferenceError(BaseInferenceToolkitError):  # type: ignore[misc]  # Any when the toolkit is absent
    """An error whose HTTP status the serving toolkit returns to the caller."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(status.value, message, status.phrase)

    def __str__(self) -> str:
        return str(self.message)


class BadRequest(InferenceError):
    def __init__(self, message: str) -> None:
        super().__init__(HTTPStatus.BAD_REQUEST, message)


class UnsupportedMediaType(InferenceError):
    def __init__(self, message: str) -> None:
        super().__init__(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, message)


def model_fn(model_dir: str, context: Any = None) -> Scorer:
    """Load the model in ``model_dir`` onto the GPU the server assigned, or the CPU.

    Args:
        model_dir: the extracted model archive (``/opt/ml/model`` or ``/opt/ml/models/<name>/model``).
        context: the model server's context, whose ``gpu_id`` picks the GPU (optional).

    Returns:
        Scorer: the network in evaluation mode on its device, with its configuration.
    """
    return load_scorer(Path(model_dir), _device(context))


def input_fn(input_data: str | bytes | bytearray, content_type: str | None) -> CreativeBatch:
    """Decode and validate the request body in one pass.

    Args:
        input_data: the body; the toolkit passes ``str`` for exactly ``application/json``, else the model
            server's bytes (a ``bytearray`` under Multi Model Server).
        content_type: the request's Content-Type, possibly with parameters, or None.

    Returns:
        CreativeBatch: the validated creatives, in request order (empty for an empty batch).

    Raises:
        UnsupportedMediaType: the content type is neither JSON nor JSON Lines.
        BadRequest: the body is malformed, a creative is invalid, or the batch is over ``MAX_INSTANCES``.
    """
    decode = _DECODERS.get(_media_type(content_type, "Content-Type"))
    if decode is None:
        raise UnsupportedMediaType(f"Content-Type {content_type!r} is not supported; send one of {list(_DECODERS)}")
    if isinstance(input_data, bytearray):
        input_data = bytes(input_data)
    try:
        batch = decode(input_data)
    except InvalidRequest as e:
        raise BadRequest(str(e)) from e
    if len(batch) > MAX_INSTANCES:
        raise BadRequest(
            f"the request holds {len(batch)} instances; the limit is {MAX_INSTANCES} per request "
            f"(set by {MAX_INSTANCES_ENV}): split the batch"
        )
    return batch


def predict_fn(input_object: CreativeBatch, model: Scorer) -> list[Prediction]:
    """Score every creative of the request in one batched forward pass.

    Args:
        input_object: the creatives returned by ``input_fn``.
        model: the scorer returned by ``model_fn``.

    Returns:
        list[Prediction]: one prediction per creative, in request order.

    Raises:
        BadRequest: a creative's channel is not one this model was trained for.
    """
    config = model.config
    served = model.serves[input_object.channel]
    if not served.all():
        index = int(np.argmin(served))
        raise BadRequest(
            f"instances[{index}].channel: {config.name} scores channels {list(config.channels)} only, "
            f"got {CHANNELS[input_object.channel[index]]!r}; send it to a model that serves that channel"
        )
    # What ndarray.round(6) computes, without its Python-level dispatch (about 10 us a call, a request at batch 1).
    scores = (np.rint(model.score(input_object) * 1e6) / 1e6).tolist()
    return list(map(Prediction, input_object.creative_ids, scores, repeat(config.name), repeat(config.version)))


def output_fn(prediction: list[Prediction], response_content_type: str | None) -> tuple[str, str]:
    """Serialize the predictions in the first supported type of the Accept header.

    Args:
        prediction: what ``predict_fn`` returned.
        response_content_type: the request's Accept header (the toolkit substitutes its default for a
            missing one or ``*/*``); a comma-separated list is tried in order, parameters are ignored.

    Returns:
        tuple[str, str]: the body and its content type, which the toolkit sends as the response Content-Type.

    Raises:
        UnsupportedMediaType: no type in Accept is JSON, JSON Lines or a wildcard.
    """
    for media_range in (response_content_type or DEFAULT_ACCEPT).split(","):
        media_type = _media_type(media_range, "Accept")
        media_type = DEFAULT_ACCEPT if media_type in ("*/*", "application/*") else media_type
        if media_type in _ENCODERS:
            return _ENCODERS[media_type](prediction), media_type
    raise UnsupportedMediaType(f"Accept {response_content_type!r} is not supported; accept one of {list(_ENCODERS)}")


def _device(context: Any) -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    properties = getattr(context, "system_properties", None) or {}
    return torch.device("cuda", int(properties.get("gpu_id") or 0))


def _media_type(header: str | None, name: str) -> str:
    """The lower-cased type of a header value; a charset other than UTF-8 is refused."""
    media_type, *parameters = (header or "").split(";")
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"{name} {header!r}: only the UTF-8 charset is supported")
    return media_type.strip().lower()


def _encode_json(prediction: list[Prediction]) -> str:
    return _ENCODER.encode({"predictions": prediction}).decode()


def _encode_jsonlines(prediction: list[Prediction]) -> str:
    return _ENCODER.encode_lines(prediction).decode()


_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[str, Callable[[str | bytes], CreativeBatch]] = {JSON: decode_json, JSONLINES: decode_jsonlines}
_ENCODERS: dict[str, Callable[[list[Prediction]], str]] = {JSON: _encode_json, JSONLINES: _encode_jsonlines}
