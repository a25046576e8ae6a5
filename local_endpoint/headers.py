"""The runtime API's HTTP headers: every ``X-Amzn-*`` name, spelt as SageMaker spells it, and the checks that
SageMaker makes and botocore does not (lengths, patterns, ranges). A failed check is a `ValidationError`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from local_endpoint.errors import ValidationError

VARIANT = "AllTraffic"  # the one production variant of every local endpoint

# Requests: InvokeEndpoint, and passed on to the model server.
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
INFERENCE_COMPONENT = "X-Amzn-SageMaker-Inference-Component"
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
FORWARDED = ("content-type", "accept", CUSTOM_ATTRIBUTES, TARGET_MODEL)  # what the model server receives

# Requests: InvokeEndpointAsync.
INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
ASYNC_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
ASYNC_ACCEPT = "X-Amzn-SageMaker-Accept"
TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
INVOCATION_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
FILENAME = "X-Amzn-SageMaker-Filename"
OUTPUT_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"

# Responses.
REQUEST_ID = "x-amzn-RequestId"
ERROR_TYPE = "x-amzn-ErrorType"
INVOKED_VARIANT = "x-Amzn-Invoked-Production-Variant"
OUTPUT_LOCATION = "X-Amzn-SageMaker-OutputLocation"
FAILURE_LOCATION = "X-Amzn-SageMaker-FailureLocation"

_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_COMPONENT = re.compile(r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_FILENAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$")
_EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")

Headers = Mapping[str, str]  # starlette's Headers: names match whatever their case


def check_endpoint_name(name: str) -> None:
    """The path's endpoint name, checked as SageMaker checks ``EndpointName``."""
    if len(name) > 63 or not _ENDPOINT_NAME.match(name):
        raise ValidationError(
            f"1 validation error detected: Value '{name}' at 'endpointName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
        )


def check_headers(headers: Headers) -> None:
    """The headers that both invocations take."""
    for header, limit in ((TARGET_MODEL, 1024), (INFERENCE_ID, 64)):
        value = headers.get(header)
        if value is not None and (
            not value or len(value) > limit or value[0].isspace() or not (value.isascii() and value.isprintable())
        ):  # SageMaker's pattern \A\S[\p{Print}]*\z is Java's: \p{Print} is printable ASCII
            raise ValidationError(
                f"{header} must be 1 to {limit} printable ASCII characters, not starting with a space."
            )
    attributes = headers.get(CUSTOM_ATTRIBUTES)
    if attributes is not None and (len(attributes) > 1024 or not attributes.isascii()):
        raise ValidationError(f"{CUSTOM_ATTRIBUTES} must be at most 1024 ASCII characters.")
    component = headers.get(INFERENCE_COMPONENT)
    if component is not None and (len(component) > 63 or not _COMPONENT.match(component)):
        raise ValidationError(f"{INFERENCE_COMPONENT} {component!r} is not a valid inference component name.")


def check_target_variant(headers: Headers, endpoint: str) -> None:
    variant = headers.get(TARGET_VARIANT)
    if variant is not None and variant != VARIANT:
        raise ValidationError(f"Variant {variant} does not exist for endpoint {endpoint}; its variant is {VARIANT}.")


def input_location(headers: Headers) -> str:
    """InvokeEndpointAsync's input, with its content type and accept checked too."""
    location = headers.get(INPUT_LOCATION)
    if not location or not location.startswith("s3://") or len(location) > 1024:
        raise ValidationError(f"{INPUT_LOCATION} must be an s3://bucket/key URI of at most 1024 characters.")
    for header in (ASYNC_CONTENT_TYPE, ASYNC_ACCEPT):
        if len(headers.get(header, "")) > 1024:
            raise ValidationError(f"{header} must be at most 1024 characters.")
    return location


def filename(headers: Headers) -> str | None:
    return _matching(headers, FILENAME, _FILENAME, 32)


def output_extension(headers: Headers) -> str | None:
    return _matching(headers, OUTPUT_EXTENSION, _EXTENSION, 512)


def seconds(headers: Headers, name: str, low: int, high: int, default: int) -> int:
    """A whole number of seconds from ``low`` to ``high`` in header ``name``; ``default`` without one."""
    value = headers.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValidationError(f"{name} must be a whole number of seconds from {low} to {high}, got {value!r}.")
    return int(value)


def _matching(headers: Headers, name: str, pattern: re.Pattern[str], limit: int) -> str | None:
    value = headers.get(name)
    if value is not None and (len(value) > limit or not pattern.match(value)):
        raise ValidationError(f"{name} {value!r} does not match {pattern.pattern} (at most {limit} characters).")
    return str(value) if value is not None else None
