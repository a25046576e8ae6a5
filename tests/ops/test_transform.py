"""ops.transform: requests checked by build_request and by botocore itself, the model lookup, the job loop.

The rules of the settings both batch transforms share are tested in tests/artifacts/test_transform_request.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber

from creative_scoring.artifacts.transform_request import TransformSettings
from creative_scoring.config.naming import output_id
from ops.transform import (
    AwsCallError,
    Interrupted,
    JobFailed,
    TransformError,
    TransformRequest,
    build_request,
    default_output_uri,
    find_model,
    run,
    to_api,
)
from tests.artifacts.test_transform_request import RULES as SHARED_RULES
from tests.artifacts.test_transform_request import assert_names_parameter_and_value
from tests.ops.conftest import ARN, ENDPOINT, MODEL, STACK, client, describe_stacks_response, queue_job

JOB = "creative-scoring-dev-async-20250101-120000"
REQUIRED: dict[str, Any] = {
    "job_name": JOB,
    "model_name": MODEL,
    "input_uri": "s3://creative-scoring-batch/in/2025-01-01/",
    "output_uri": "s3://creative-scoring-batch/out/2025-01-01/",
}
EXPECTED_DEFAULT: dict[str, Any] = {
    "TransformJobName": JOB,
    "ModelName": MODEL,
    "MaxConcurrentTransforms": 1,
    "MaxPayloadInMB": 6,
    "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 3},
    "TransformInput": {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://creative-scoring-batch/in/2025-01-01/"}
        },
        "ContentType": "application/jsonlines",
        "CompressionType": "None",
        "SplitType": "None",
    },
    "TransformOutput": {"S3OutputPath": "s3://creative-scoring-batch/out/2025-01-01/", "AssembleWith": "None"},
    "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
}


def create(stubber: Stubber, params: dict[str, Any]) -> None:
    """Send ``params`` through the real client: botocore validates them, the Stubber compares them."""
    stubber.add_response("create_transform_job", {"TransformJobArn": ARN.format("j")}, params)
    stubber.client.create_transform_job(**params)


def test_a_default_request_passes_botocore_validation_as_the_expected_parameters(sagemaker: Stubber) -> None:
    params = to_api(build_request(**REQUIRED))
    assert params == EXPECTED_DEFAULT
    create(sagemaker, params)


def test_every_option_maps_to_its_create_transform_job_member(sagemaker: Stubber) -> None:
    request = build_request(
        **REQUIRED,
        content_type="text/csv",
        split_type="Line",
        compression_type="Gzip",
        batch_strategy="SingleRecord",
        max_payload_mb=20,
        max_concurrent_transforms=5,
        assemble_with="Line",
        accept="text/csv",
        kms_key_id="alias/creative-scoring",
        instance_type="ml.g5.xlarge",
        instance_count=2,
        invocation_timeout_s=3600,
        invocation_max_retries=0,
        environment={"MODEL_NAME": "creative-scorer-v2"},
    )
    expected = copy.deepcopy(EXPECTED_DEFAULT)
    expected |= {
        "BatchStrategy": "SingleRecord",
        "MaxConcurrentTransforms": 5,
        "MaxPayloadInMB": 20,
        "Environment": {"MODEL_NAME": "creative-scorer-v2"},
    }
    expected["ModelClientConfig"] = {"InvocationsTimeoutInSeconds": 3600, "InvocationsMaxRetries": 0}
    expected["TransformInput"] |= {"ContentType": "text/csv", "CompressionType": "Gzip", "SplitType": "Line"}
    expected["TransformOutput"] |= {"Accept": "text/csv", "AssembleWith": "Line", "KmsKeyId": "alias/creative-scoring"}
    expected["TransformResources"] = {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2}
    assert to_api(request) == expected
    create(sagemaker, to_api(request))


def test_defaults_are_the_documented_ones() -> None:
    shared = {f.name for f in fields(TransformSettings)}  # tests/artifacts/test_transform_request.py
    defaults = {f.name: f.default for f in fields(TransformRequest) if f.name not in REQUIRED and f.name not in shared}
    assert defaults == {
        "kms_key_id": None,
        "instance_type": "ml.c5.xlarge",
        "instance_count": 1,
        "invocation_timeout_s": 600,
    }


def test_the_request_is_immutable() -> None:
    request = build_request(**REQUIRED, environment={"A": "1"})
    with pytest.raises(TypeError):
        request.environment["B"] = "2"  # type: ignore[index]


# (rule, compliant options, non-compliant options, parameter named in the message): what only a request in AWS has
RULES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("job name pattern", {"job_name": "a--b-1"}, {"job_name": "batch_2025"}, "TransformJobName"),
    ("job name starts alphanumeric", {"job_name": "a"}, {"job_name": "-a"}, "TransformJobName"),
    ("job name length", {"job_name": "a" * 63}, {"job_name": "a" * 64}, "TransformJobName"),
    ("model name pattern", {"model_name": "m-1"}, {"model_name": "m_1"}, "ModelName"),
    ("input is s3://bucket/key", {"input_uri": "s3://bucket/one.jsonl"}, {"input_uri": "s3://bucket"}, "S3Uri"),
    ("input is s3, not https", {"input_uri": "s3://b-1/k"}, {"input_uri": "https://b-1.s3.amazonaws.com/k"}, "S3Uri"),
    ("output bucket name", {"output_uri": "s3://bucket.v2/o"}, {"output_uri": "s3://Bucket/o"}, "S3OutputPath"),
    ("uri length", {"output_uri": "s3://b-1/" + "k" * 1015}, {"output_uri": "s3://b-1/" + "k" * 1016}, "S3OutputPath"),
    ("instance type", {"instance_type": "ml.m5.large"}, {"instance_type": "ml.t3.medium"}, "InstanceType"),
    ("instance count", {"instance_count": 1}, {"instance_count": 0}, "InstanceCount"),
    ("timeout at most 1 h", {"invocation_timeout_s": 3600}, {"invocation_timeout_s": 3601}, "TimeoutInSeconds"),
    ("timeout at least 1 s", {"invocation_timeout_s": 1}, {"invocation_timeout_s": 0}, "TimeoutInSeconds"),
    ("kms key", {"kms_key_id": "alias/creative-scoring"}, {"kms_key_id": "alias/with space"}, "KmsKeyId"),
]
IDS = [rule[0] for rule in RULES]
COMPLIANT = [(rule, compliant, non_compliant, api) for rule, compliant, non_compliant, api, _ in SHARED_RULES] + RULES


@pytest.mark.parametrize(("rule", "compliant", "non_compliant", "api"), COMPLIANT, ids=[rule[0] for rule in COMPLIANT])
def test_a_compliant_request_is_built_and_passes_botocore(
    sagemaker: Stubber, rule: str, compliant: dict[str, Any], non_compliant: dict[str, Any], api: str
) -> None:
    create(sagemaker, to_api(build_request(**REQUIRED | compliant)))


@pytest.mark.parametrize(("rule", "compliant", "non_compliant", "api"), RULES, ids=IDS)
def test_a_non_compliant_request_is_a_transform_error_naming_parameter_and_value(
    rule: str, compliant: dict[str, Any], non_compliant: dict[str, Any], api: str
) -> None:
    with pytest.raises(TransformError) as raised:
        build_request(**REQUIRED | non_compliant)
    assert_names_parameter_and_value(raised.value, non_compliant, api)


Mutation = Callable[[dict[str, Any]], object]
BOTOCORE_REJECTS: dict[str, Mutation] = {
    "negative MaxPayloadInMB": lambda p: p.update(MaxPayloadInMB=-1),
    "InstanceCount 0": lambda p: p["TransformResources"].update(InstanceCount=0),
    "InvocationsTimeoutInSeconds 0": lambda p: p["ModelClientConfig"].update(InvocationsTimeoutInSeconds=0),
    "string MaxPayloadInMB": lambda p: p.update(MaxPayloadInMB="6"),
    "empty TransformJobName": lambda p: p.update(TransformJobName=""),
    "missing ModelName": lambda p: p.pop("ModelName"),
    "unknown member": lambda p: p.update(DataProcessing={"JoinSource": "Input", "Join": "Input"}),
}
BOTOCORE_ACCEPTS: dict[str, Mutation] = {
    "MaxPayloadInMB 101": lambda p: p.update(MaxPayloadInMB=101),
    "payload x concurrency 600": lambda p: p.update(MaxPayloadInMB=6, MaxConcurrentTransforms=100),
    "invalid BatchStrategy enum": lambda p: p.update(BatchStrategy="Bogus"),
    "BatchStrategy without SplitType": lambda p: p.update(BatchStrategy="MultiRecord"),
    "invalid InstanceType enum": lambda p: p["TransformResources"].update(InstanceType="ml.t3.medium"),
    "InvocationsTimeoutInSeconds 3601": lambda p: p["ModelClientConfig"].update(InvocationsTimeoutInSeconds=3601),
    "TransformJobName off pattern": lambda p: p.update(TransformJobName="batch_2025!"),
    "17 Environment entries": lambda p: p.update(Environment={f"K{i}": "v" for i in range(17)}),
    "S3Uri not a URI": lambda p: p["TransformInput"]["DataSource"]["S3DataSource"].update(S3Uri="bucket/key"),
}


@pytest.mark.parametrize("mutate", BOTOCORE_REJECTS.values(), ids=BOTOCORE_REJECTS)
def test_the_harness_validates_botocore_rejects_what_breaks_its_model(mutate: Mutation) -> None:
    params = copy.deepcopy(EXPECTED_DEFAULT)
    mutate(params)
    with Stubber(client("sagemaker")) as stubber:  # a response is ready: only validation can refuse the call
        stubber.add_response("create_transform_job", {"TransformJobArn": ARN.format("j")})
        with pytest.raises(ParamValidationError):
            stubber.client.create_transform_job(**params)


@pytest.mark.parametrize("mutate", BOTOCORE_ACCEPTS.values(), ids=BOTOCORE_ACCEPTS)
def test_botocore_checks_no_maximum_enum_or_pattern_so_build_request_must(sagemaker: Stubber, mutate: Mutation) -> None:
    params = copy.deepcopy(EXPECTED_DEFAULT)
    mutate(params)
    create(sagemaker, params)


def test_a_request_built_around_build_request_is_still_stopped_by_botocore() -> None:
    request = TransformRequest(**REQUIRED, instance_count=0)  # not validated; no stub: only botocore can refuse
    with pytest.raises(
        TransformError, match=r"botocore rejected the CreateTransformJob parameters:(.|\n)*InstanceCount"
    ):
        run(client("sagemaker"), request, poll_s=0)


def test_find_model_reads_the_endpoints_model_name_output(cloudformation: Stubber) -> None:
    outputs = {output_id(ENDPOINT, "EndpointName"): ENDPOINT, "CreativeScoringDevAsyncModelName": MODEL}
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})
    assert find_model(cloudformation.client, STACK, ENDPOINT) == MODEL


def test_a_missing_model_output_names_the_stack_the_key_and_the_keys_present(cloudformation: Stubber) -> None:
    outputs = {"CreativeScoringDevEndpointName": "creative-scoring-dev"}
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})
    with pytest.raises(TransformError) as raised:
        find_model(cloudformation.client, STACK, ENDPOINT)
    message = str(raised.value)
    assert STACK in message
    assert "CreativeScoringDevAsyncModelName" in message
    assert "['CreativeScoringDevEndpointName']" in message
    assert "--model" in message


def test_a_missing_stack_is_an_aws_call_error_naming_the_api_and_code(cloudformation: Stubber) -> None:
    cloudformation.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", 400, {"StackName": STACK}
    )
    with pytest.raises(AwsCallError) as raised:
        find_model(cloudformation.client, STACK, ENDPOINT)
    assert (raised.value.api, raised.value.code) == ("DescribeStacks", "ValidationError")
    assert str(raised.value) == f"DescribeStacks failed: ValidationError: Stack with id {STACK} does not exist"


class Recorder:
    """A fake clock and sleep: ``clock`` returns ``ticks`` in turn, ``sleep`` records the seconds asked for."""

    def __init__(self, *ticks: float) -> None:
        self.ticks, self.slept, self.lines = list(ticks), list[float](), list[str]()

    def clock(self) -> float:
        return self.ticks.pop(0)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def run_recorded(stubber: Stubber, recorder: Recorder, **kwargs: Any) -> dict[str, Any]:
    request = build_request(**REQUIRED)
    return run(
        stubber.client,
        request,
        poll_s=kwargs.pop("poll_s", 5.0),
        progress=recorder.lines.append,
        clock=recorder.clock,
        sleep=recorder.sleep,
        **kwargs,
    )


def test_run_reports_each_status_change_with_elapsed_time_until_completed(sagemaker: Stubber) -> None:
    queue_job(sagemaker, EXPECTED_DEFAULT, ["InProgress", "InProgress", "Completed"])
    recorder = Recorder(0.0, 1.0, 2.0, 3725.0)
    description = run_recorded(sagemaker, recorder, wait=True)
    assert description["TransformJobStatus"] == "Completed"
    assert recorder.lines == [f"[0:00:01] {JOB}: InProgress", f"[1:02:05] {JOB}: Completed"]
    assert recorder.slept == [5.0, 5.0]


def test_a_failed_job_raises_with_its_failure_reason(sagemaker: Stubber) -> None:
    reason = "ClientError: See job logs for more information"
    queue_job(sagemaker, EXPECTED_DEFAULT, ["InProgress", "Failed"], FailureReason=reason)
    recorder = Recorder(0.0, 1.0, 90.0)
    with pytest.raises(JobFailed) as raised:
        run_recorded(sagemaker, recorder, wait=True)
    assert f"transform job {JOB} Failed: {reason}" in str(raised.value)
    assert "/aws/sagemaker/TransformJobs" in str(raised.value)
    assert raised.value.description["FailureReason"] == reason
    assert isinstance(raised.value, TransformError)
    assert recorder.lines == [f"[0:00:01] {JOB}: InProgress", f"[0:01:30] {JOB}: Failed"]


def test_a_stopped_job_raises_too(sagemaker: Stubber) -> None:
    queue_job(sagemaker, EXPECTED_DEFAULT, ["Stopping", "Stopped"])
    with pytest.raises(JobFailed, match=f"{JOB} Stopped: no FailureReason given"):
        run_recorded(sagemaker, Recorder(0.0, 1.0, 2.0), wait=True)


def test_without_wait_run_describes_the_job_once(sagemaker: Stubber) -> None:
    queue_job(sagemaker, EXPECTED_DEFAULT, ["InProgress"])
    recorder = Recorder(0.0, 0.5)
    assert run_recorded(sagemaker, recorder, wait=False)["TransformJobStatus"] == "InProgress"
    assert recorder.slept == []
    assert recorder.lines == [f"[0:00:00] {JOB}: InProgress"]


def test_a_create_error_is_an_aws_call_error_naming_the_api_and_code(sagemaker: Stubber) -> None:
    sagemaker.add_client_error("create_transform_job", "ResourceLimitExceeded", "too many ml.c5.xlarge for jobs")
    with pytest.raises(AwsCallError, match=r"^CreateTransformJob failed: ResourceLimitExceeded: too many"):
        run(sagemaker.client, build_request(**REQUIRED), poll_s=0)


def test_a_long_unchanged_status_is_reported_again_every_heartbeat(sagemaker: Stubber) -> None:
    queue_job(sagemaker, EXPECTED_DEFAULT, ["InProgress"] * 4 + ["Completed"])
    recorder = Recorder(0.0, 1.0, 300.0, 601.0, 900.0, 1300.0)
    run_recorded(sagemaker, recorder, wait=True)
    assert recorder.lines == [
        f"[0:00:01] {JOB}: InProgress",
        f"[0:10:01] {JOB}: InProgress",
        f"[0:21:40] {JOB}: Completed",
    ]


def test_ctrl_c_while_waiting_is_interrupted_naming_the_created_job(sagemaker: Stubber) -> None:
    queue_job(sagemaker, EXPECTED_DEFAULT, ["InProgress"])

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as raised:
        run(sagemaker.client, build_request(**REQUIRED), poll_s=5, sleep=interrupt)
    assert (raised.value.job_name, raised.value.created) == (JOB, True)
    assert isinstance(raised.value, KeyboardInterrupt)


def test_ctrl_c_during_create_transform_job_may_have_created_it(sagemaker: Stubber) -> None:
    def interrupt(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    sagemaker.client.meta.events.register("provide-client-params.sagemaker.CreateTransformJob", interrupt)
    with pytest.raises(Interrupted) as raised:
        run(sagemaker.client, build_request(**REQUIRED), poll_s=0)
    assert (raised.value.job_name, raised.value.created) == (JOB, None)


def test_a_describe_error_names_the_job_that_was_created(sagemaker: Stubber) -> None:
    sagemaker.add_response("create_transform_job", {"TransformJobArn": ARN.format(JOB)}, EXPECTED_DEFAULT)
    sagemaker.add_client_error("describe_transform_job", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(AwsCallError) as raised:
        run(sagemaker.client, build_request(**REQUIRED), poll_s=0)
    assert (raised.value.api, raised.value.code, raised.value.job_name) == (
        "DescribeTransformJob",
        "ThrottlingException",
        JOB,
    )


def test_the_default_output_is_the_stacks_batch_output_path_and_the_job_name() -> None:
    outputs = {output_id(ENDPOINT, "BatchOutputPath"): "s3://model-bucket/batch/creative-scoring-dev-async/output/"}
    uri = default_output_uri(outputs, STACK, ENDPOINT, JOB)
    assert uri == f"s3://model-bucket/batch/creative-scoring-dev-async/output/{JOB}/"
    assert to_api(build_request(**REQUIRED | {"output_uri": uri}))["TransformOutput"]["S3OutputPath"] == uri


def test_a_missing_batch_output_path_names_the_key_and_the_fix() -> None:
    with pytest.raises(TransformError) as raised:
        default_output_uri({output_id(ENDPOINT, "ModelName"): MODEL}, STACK, ENDPOINT, JOB)
    message = str(raised.value)
    assert f"stack {STACK} has no output CreativeScoringDevAsyncBatchOutputPath" in message
    assert "pass --output S3_URI" in message
