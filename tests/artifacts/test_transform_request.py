"""The CreateTransformJob settings both batch transforms share: SageMaker's defaults, and its rules, tested once."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from creative_scoring.artifacts.transform_request import TransformError, TransformSettings

# (rule, compliant options, non-compliant options, parameter named in the message, the fix it names)
RULES: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("content type length", {"content_type": "t/" + "x" * 254}, {"content_type": "t/" + "x" * 255}, "ContentType", ""),
    ("content type present", {"content_type": "application/json"}, {"content_type": ""}, "ContentType", "MIME type"),
    (
        "content type on one line",
        {"content_type": "text/csv; charset=utf-8"},
        {"content_type": "text/csv\r"},
        "ContentType",
        "",
    ),
    ("accept present", {"accept": "application/json"}, {"accept": ""}, "Accept", ""),
    ("split type", {"split_type": "Line"}, {"split_type": "RecordIO"}, "SplitType", "use Line"),
    ("split type case", {"split_type": "Line"}, {"split_type": "line"}, "SplitType", "case-sensitive: use Line"),
    ("compression", {"compression_type": "Gzip"}, {"compression_type": "gzip"}, "CompressionType", "use Gzip"),
    (
        "batch strategy",
        {"split_type": "Line", "batch_strategy": "SingleRecord"},
        {"split_type": "Line", "batch_strategy": "MULTI_RECORD"},
        "BatchStrategy",
        "SingleRecord, MultiRecord",
    ),
    (
        "batch strategy needs a split type",
        {"split_type": "Line", "batch_strategy": "MultiRecord"},
        {"split_type": "None", "batch_strategy": "MultiRecord"},
        "BatchStrategy",
        "needs split_type 'Line'",
    ),
    ("assemble with", {"assemble_with": "Line"}, {"assemble_with": "Lines"}, "AssembleWith", "None, Line"),
    ("payload at most 100 MB", {"max_payload_mb": 100}, {"max_payload_mb": 101}, "MaxPayloadInMB", "0..100"),
    ("payload 0 streams", {"max_payload_mb": 0}, {"max_payload_mb": -1}, "MaxPayloadInMB", ""),
    ("payload is an integer", {"max_payload_mb": 6}, {"max_payload_mb": "6"}, "MaxPayloadInMB", "integer"),
    ("payload is whole", {"max_payload_mb": 2}, {"max_payload_mb": 2.5}, "MaxPayloadInMB", "integer"),
    (
        "payload x concurrency at most 100",
        {"max_payload_mb": 6, "max_concurrent_transforms": 16},
        {"max_payload_mb": 6, "max_concurrent_transforms": 17},
        "MaxConcurrentTransforms",
        "lower max_concurrent_transforms to 16 or max_payload_mb to 5",
    ),
    ("concurrency 0 is unset", {"max_concurrent_transforms": 0}, {"max_concurrent_transforms": -1}, "Concurrent", ""),
    ("retries at most 3", {"invocation_max_retries": 3}, {"invocation_max_retries": 4}, "InvocationsMaxRetries", ""),
    (
        "at most 16 environment entries",
        {"environment": {f"K{i}": "v" for i in range(16)}},
        {"environment": {f"K{i}": "v" for i in range(17)}},
        "Environment",
        "at most 16",
    ),
    ("environment key", {"environment": {"_A1": "v"}}, {"environment": {"1ST": "v"}}, "Environment", "letters"),
    ("environment value", {"environment": {"A": "v" * 10240}}, {"environment": {"A": "v" * 10241}}, "Environment", ""),
]
IDS = [rule[0] for rule in RULES]


def test_defaults_are_sagemakers_except_the_content_type() -> None:
    defaults = {f.name: f.default for f in fields(TransformSettings) if f.name != "environment"}
    assert defaults == {
        "content_type": "application/jsonlines",  # SageMaker sends none; the creative-scoring models read lines
        "accept": None,
        "split_type": "None",
        "compression_type": "None",
        "batch_strategy": None,
        "max_payload_mb": 6,
        "assemble_with": "None",
        "max_concurrent_transforms": 1,
        "invocation_max_retries": 3,
    }
    assert TransformSettings().environment == {}


@pytest.mark.parametrize(("rule", "compliant", "non_compliant", "api", "fix"), RULES, ids=IDS)
def test_a_non_compliant_request_is_a_transform_error_naming_parameter_and_value(
    rule: str, compliant: dict[str, Any], non_compliant: dict[str, Any], api: str, fix: str
) -> None:
    assert TransformSettings(**compliant)
    with pytest.raises(TransformError) as raised:
        TransformSettings(**non_compliant)
    assert_names_parameter_and_value(raised.value, non_compliant, api)
    assert fix in str(raised.value)


def assert_names_parameter_and_value(error: TransformError, non_compliant: dict[str, Any], api: str) -> None:
    """The message names the field, SageMaker's parameter and the value, briefly; the error is a ValueError."""
    message = str(error)
    named = [name for name in non_compliant if f"{name} (" in message]
    assert named, message
    assert api in message
    value = non_compliant[named[0]]
    assert isinstance(value, dict) or repr(value)[:40] in message
    assert len(message) < 400
    assert isinstance(error, ValueError)
