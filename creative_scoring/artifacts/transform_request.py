"""The CreateTransformJob settings that shape the model's requests and the outputs: SageMaker's defaults and rules,
once for both batch transforms, on this machine (``local_endpoint.transform``) and in AWS (``ops.transform``).

Defaults are SageMaker's (contract §12): ``SplitType`` None, ``CompressionType`` None, ``BatchStrategy`` unset,
``MaxPayloadInMB`` 6, ``AssembleWith`` None, no ``Accept``, ``MaxConcurrentTransforms`` 1, ``InvocationsMaxRetries``
3, except ``ContentType``: SageMaker sends none when it is unset; both tools send JSON Lines, which the
creative-scoring models read. Besides SageMaker's rules, ``SplitType`` RecordIO and TFRecord are refused: no model
here reads them. Each tool names the settings its own way (`TransformSettings.OPTIONS`: fields or flags).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

JSONLINES = "application/jsonlines"
SPLIT_TYPES = ("None", "Line")
UNSUPPORTED_SPLIT_TYPES = ("RecordIO", "TFRecord")
COMPRESSION_TYPES = ("None", "Gzip")
BATCH_STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE_WITH = ("None", "Line")
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB = 100  # also the bound on MaxConcurrentTransforms x MaxPayloadInMB
DEFAULT_MAX_RETRIES = 3
MAX_RETRIES = 3
MAX_ENVIRONMENT = 16
MAX_ENVIRONMENT_VALUE = 10240
ENV_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")
MEDIA_TYPE = re.compile(r"[^\r\n\x85\u2028\u2029]{1,256}")  # the API model's ".*", which stops at line breaks

API_NAMES = {
    "content_type": "ContentType",
    "accept": "Accept",
    "split_type": "SplitType",
    "compression_type": "CompressionType",
    "batch_strategy": "BatchStrategy",
    "max_payload_mb": "MaxPayloadInMB",
    "assemble_with": "AssembleWith",
    "max_concurrent_transforms": "MaxConcurrentTransforms",
    "invocation_max_retries": "InvocationsMaxRetries",
    "environment": "Environment",
}


class TransformError(ValueError):
    """A transform request SageMaker would refuse, or a job that cannot start or complete; the message names the
    parameter, its value and the fix."""


def invalid(option: str, api: str, value: object, problem: str) -> TransformError:
    """``<option> (<api>) = <value>: <problem>``; ``option`` is the caller's name (field, flag), ``api`` SageMaker's."""
    shown = repr(value)
    if len(shown) > 80:
        shown = f"{shown[:60]}... ({len(value) if isinstance(value, str) else len(shown)} chars)"
    return TransformError(f"{option} ({api}) = {shown}: {problem}")


def check_int(value: object, option: str, api: str, low: int, high: int | None) -> None:
    """An integer (not a bool) from ``low`` to ``high`` (None: no maximum), or a `TransformError`."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return
    allowed = f"{low}..{high}" if high is not None else f"{low} or more"
    raise invalid(option, api, value, f"must be an integer {allowed}")


@dataclass(frozen=True, kw_only=True)
class TransformSettings:
    """CreateTransformJob's settings of the requests to the model and of the outputs; checked on construction."""

    OPTIONS: ClassVar[Mapping[str, str]] = {}  # a field's name in messages, when not the field's own (a flag)

    content_type: str = JSONLINES  # TransformInput.ContentType
    accept: str | None = None  # TransformOutput.Accept; None: no Accept header, the model's default type
    split_type: str = "None"  # TransformInput.SplitType
    compression_type: str = "None"  # TransformInput.CompressionType: Gzip inputs are decompressed first
    batch_strategy: str | None = None  # BatchStrategy; None: unset, as SplitType None requires
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB  # MaxPayloadInMB; 0: HTTP chunked streaming
    assemble_with: str = "None"  # TransformOutput.AssembleWith
    max_concurrent_transforms: int = 1  # MaxConcurrentTransforms; 0: unset, 1 without execution-parameters
    invocation_max_retries: int = DEFAULT_MAX_RETRIES  # ModelClientConfig.InvocationsMaxRetries
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        for check in CHECKS:
            check(self)

    def option(self, name: str) -> str:
        """The field ``name`` as the caller spells it."""
        return self.OPTIONS.get(name, name)

    def invalid(self, name: str, problem: str) -> TransformError:
        return invalid(self.option(name), API_NAMES[name], getattr(self, name), problem)


def _check_media_types(settings: TransformSettings) -> None:
    for name in ("content_type", "accept"):
        value = getattr(settings, name)
        if name == "accept" and value is None:
            continue
        if not isinstance(value, str) or not value.strip() or not MEDIA_TYPE.fullmatch(value):
            raise settings.invalid(
                name, "must be a MIME type of 1 to 256 characters on one line, e.g. application/jsonlines"
            )


def _check_choice(settings: TransformSettings, name: str, choices: Sequence[str]) -> None:
    value = getattr(settings, name)
    if value in choices:
        return
    same = [c for c in choices if c.lower() == str(value).lower()]
    raise settings.invalid(
        name, f"values are case-sensitive: use {same[0]}" if same else f"use one of {', '.join(choices)}"
    )


def _check_choices(settings: TransformSettings) -> None:
    if settings.split_type in UNSUPPORTED_SPLIT_TYPES:
        raise settings.invalid(
            "split_type",
            "RecordIO and TFRecord are not read here: use Line (one record per line) or None (whole objects)",
        )
    _check_choice(settings, "split_type", SPLIT_TYPES)
    _check_choice(settings, "compression_type", COMPRESSION_TYPES)
    _check_choice(settings, "assemble_with", ASSEMBLE_WITH)
    if settings.batch_strategy is not None:
        _check_choice(settings, "batch_strategy", BATCH_STRATEGIES)


def _check_batch_strategy(settings: TransformSettings) -> None:
    if settings.batch_strategy is not None and settings.split_type == "None":
        split = settings.option("split_type")
        raise settings.invalid(
            "batch_strategy",
            f"needs {split} 'Line' (SageMaker batches records only once it splits objects into them); with "
            f"{split} 'None' each object is one request: leave the batch strategy unset",
        )


def _check_numbers(settings: TransformSettings) -> None:
    for name, low, high in (
        ("max_payload_mb", 0, MAX_PAYLOAD_MB),
        ("max_concurrent_transforms", 0, None),
        ("invocation_max_retries", 0, MAX_RETRIES),
    ):
        check_int(getattr(settings, name), settings.option(name), API_NAMES[name], low, high)
    workers, payload = settings.max_concurrent_transforms, settings.max_payload_mb
    if workers * payload > MAX_PAYLOAD_MB:
        more, larger = settings.option("max_concurrent_transforms"), settings.option("max_payload_mb")
        smaller = MAX_PAYLOAD_MB // workers  # 0: no payload is small enough for so many
        raise settings.invalid(
            "max_concurrent_transforms",
            f"times {larger} {payload} is {workers * payload} MB; it must be at most {MAX_PAYLOAD_MB}: "
            f"lower {more} to {MAX_PAYLOAD_MB // payload}" + (f" or {larger} to {smaller}" if smaller else ""),
        )


def _check_environment(settings: TransformSettings) -> None:
    environment, option = settings.environment, settings.option("environment")
    if len(environment) > MAX_ENVIRONMENT:
        problem = f"has {len(environment)} entries; SageMaker allows at most {MAX_ENVIRONMENT}"
        raise invalid(option, "Environment", sorted(environment), problem)
    for key, value in environment.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise invalid(option, "Environment", key, "keys are letters, digits and _, not starting with a digit")
        if not isinstance(value, str) or len(value) > MAX_ENVIRONMENT_VALUE:
            problem = f"values are strings of at most {MAX_ENVIRONMENT_VALUE} characters"
            raise invalid(option, f"Environment[{key}]", value, problem)


CHECKS: tuple[Callable[[TransformSettings], None], ...] = (
    _check_media_types,
    _check_choices,
    _check_batch_strategy,
    _check_numbers,
    _check_environment,
)
