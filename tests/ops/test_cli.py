"""``creative-scoring sagemaker transform``: exit codes and messages, with stubbed real clients injected."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore import stub
from botocore.stub import Stubber

from ops.cli import default_job_name, main
from ops.transform import JOB_NAME, build_request, to_api
from tests.ops.conftest import ENDPOINT, MODEL, STACK, describe_stacks_response, job_description, queue_job

JOB = "nightly-2025-01-01"
INPUT, OUTPUT = "s3://creative-scoring-batch/in/", "s3://creative-scoring-batch/out/"
ARGS = ["transform", "--env", "dev", "--endpoint", ENDPOINT, "--input", INPUT, "--output", OUTPUT, "--poll-s", "0"]


class Clients:
    """The ``client_factory`` for ``main``: the stubbed clients, and which services were asked for."""

    def __init__(self, sagemaker: Stubber, cloudformation: Stubber) -> None:
        self.by_service = {"sagemaker": sagemaker.client, "cloudformation": cloudformation.client}
        self.asked: list[tuple[str, str | None]] = []

    def __call__(self, service: str, region: str | None) -> Any:
        self.asked.append((service, region))
        return self.by_service[service]


@pytest.fixture
def clients(sagemaker: Stubber, cloudformation: Stubber) -> Clients:
    return Clients(sagemaker, cloudformation)


def params(**options: Any) -> dict[str, Any]:
    return to_api(build_request(JOB, MODEL, INPUT, OUTPUT, **options))


def stack_with_model(cloudformation: Stubber) -> None:
    outputs = {"CreativeScoringDevAsyncModelName": MODEL}
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})


def no_traceback(*output: str) -> None:
    assert "Traceback" not in "".join(output)


def test_a_job_on_the_endpoints_model_completes_with_exit_0(
    clients: Clients, sagemaker: Stubber, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_with_model(cloudformation)
    queue_job(sagemaker, params(), ["InProgress", "Completed"])
    assert main([*ARGS, "--job-name", JOB], clients) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == f"transform job {JOB}: Completed"
    assert f"output  {OUTPUT}" in captured.out
    assert re.fullmatch(rf"\[0:00:00\] {JOB}: InProgress\n\[0:00:00\] {JOB}: Completed\n", captured.err)
    assert [service for service, _ in clients.asked] == ["cloudformation", "sagemaker"]


def test_every_option_reaches_the_request(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {
        "content_type": "text/csv",
        "split_type": "None",
        "compression_type": "Gzip",
        "batch_strategy": None,
        "max_payload_mb": 20,
        "max_concurrent_transforms": 5,
        "assemble_with": "None",
        "accept": "text/csv",
        "kms_key_id": "alias/creative-scoring",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 2,
        "invocation_timeout_s": 900,
        "invocation_max_retries": 1,
        "environment": {"A": "1", "B": "x=y"},
    }
    flags = [
        *("--content-type", "text/csv", "--split-type", "None", "--compression", "Gzip", "--batch-strategy", "None"),
        *("--max-payload-mb", "20", "--max-concurrent-transforms", "5", "--assemble-with", "None"),
        *("--accept", "text/csv", "--kms-key-id", "alias/creative-scoring", "--instance-type", "ml.m5.xlarge"),
        *("--instance-count", "2", "--invocation-timeout-s", "900", "--invocation-max-retries", "1"),
        *("--container-env", "A=1", "--container-env", "B=x=y"),
    ]
    queue_job(sagemaker, params(**options), ["InProgress"])
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--no-wait", *flags], clients) == 0
    assert "follow it: aws sagemaker describe-transform-job" in capsys.readouterr().out


def test_model_skips_the_stack_lookup(clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    queue_job(sagemaker, params(), ["Completed"])
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--region", "eu-west-1"], clients) == 0
    assert clients.asked == [("sagemaker", "eu-west-1")]


def test_the_default_job_name_is_the_endpoint_and_the_utc_time(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = params() | {"TransformJobName": stub.ANY}
    sagemaker.add_response("create_transform_job", {"TransformJobArn": "arn:aws:sagemaker:::x"}, expected)
    sagemaker.add_response("describe_transform_job", job_description(params(), "InProgress"), None)
    assert main([*ARGS, "--model", MODEL, "--no-wait"], clients) == 0
    assert re.search(rf"\] {ENDPOINT}-\d{{8}}-\d{{6}}: InProgress", capsys.readouterr().err)


def test_a_default_job_name_fits_the_name_pattern() -> None:
    name = default_job_name("a-" * 40, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert len(name) <= 63
    assert JOB_NAME.fullmatch(name)
    assert name.endswith("a-20250102-030405")


def test_json_prints_the_last_description(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_job(sagemaker, params(), ["Completed"])
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--json"], clients) == 0
    assert json.loads(capsys.readouterr().out)["TransformJobStatus"] == "Completed"


def test_a_failed_job_exits_1_with_its_reason(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_job(sagemaker, params(), ["InProgress", "Failed"], FailureReason="AlgorithmError: bad record on line 7")
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB], clients) == 1
    captured = capsys.readouterr()
    assert f"transform job {JOB} Failed: AlgorithmError: bad record on line 7" in captured.err
    assert captured.out == ""
    no_traceback(captured.out, captured.err)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-payload-mb", "50", "--max-concurrent-transforms", "3"], "MaxConcurrentTransforms) = 3: times"),
        (
            ["--split-type", "None", "--batch-strategy", "MultiRecord"],
            "BatchStrategy) = 'MultiRecord': needs split_type 'Line'",
        ),
        (["--input", "bucket/key"], "input_uri (S3Uri) = 'bucket/key': must be s3://bucket/key"),
        (["--instance-type", "ml.t3.medium"], "InstanceType) = 'ml.t3.medium'"),
        (["--job-name", "nightly_1"], "job_name (TransformJobName) = 'nightly_1'"),
    ],
)
def test_an_invalid_request_exits_2_before_any_aws_call(
    clients: Clients, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, *flags], clients) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("invalid transform request: ")
    assert message in captured.err
    assert clients.asked == []
    no_traceback(captured.out, captured.err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*ARGS, "--split-type", "RecordIO"], "argument --split-type: invalid choice: 'RecordIO'"),
        ([*ARGS, "--max-payload-mb", "six"], "argument --max-payload-mb: invalid int value: 'six'"),
        ([*ARGS, "--container-env", "DEBUG"], "'DEBUG' is not KEY=VALUE"),
        (["transform", "--input", INPUT, "--output", OUTPUT], "pass --endpoint"),
        (["transform", "--endpoint", ENDPOINT], "the following arguments are required: --input"),
        (["transform", "--model", MODEL, "--input", INPUT], "pass --output S3_URI, or --endpoint"),
        ([*ARGS, "--poll-s", "-1"], "argument --poll-s: '-1' is not a number of seconds, 0 or more"),
        ([*ARGS, "--poll-s", "nan"], "argument --poll-s: 'nan' is not a number of seconds"),
    ],
)
def test_a_usage_error_exits_2(
    clients: Clients, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv, clients) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    no_traceback(captured.out, captured.err)


def test_a_missing_model_output_exits_2_naming_the_output(
    clients: Clients, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {"CreativeScoringDevEndpointName": "creative-scoring-dev"}
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})
    assert main(ARGS, clients) == 2
    captured = capsys.readouterr()
    assert f"stack {STACK} has no output CreativeScoringDevAsyncModelName" in captured.err
    no_traceback(captured.out, captured.err)


def test_a_service_error_exits_3_naming_the_api_and_code(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker.add_client_error("create_transform_job", "ResourceLimitExceeded", "account-level limit", 400)
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB], clients) == 3
    captured = capsys.readouterr()
    assert captured.err == "CreateTransformJob failed: ResourceLimitExceeded: account-level limit\n"
    no_traceback(captured.out, captured.err)


def test_a_missing_stack_exits_3(clients: Clients, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    cloudformation.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
    assert main(ARGS, clients) == 3
    assert f"DescribeStacks failed: ValidationError: Stack with id {STACK}" in capsys.readouterr().err


def test_no_credentials_exits_3_through_the_real_client(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("CreateTransformJob failed: NoCredentialsError: Unable to locate credentials; ")
    no_traceback(captured.out, captured.err)


def test_no_region_exits_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB]) == 3
    err = capsys.readouterr().err
    assert err.startswith("creating the sagemaker client failed: NoRegionError: ")
    assert "pass --region" in err


def test_help_lists_every_option_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transform", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--endpoint", "--model", "--max-payload-mb", "--container-env", "--no-wait", "--batch-strategy"):
        assert flag in out
    assert "exit codes: 0 job completed" in out


def test_losing_track_of_a_created_job_exits_3_saying_it_keeps_running(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker.add_response("create_transform_job", {"TransformJobArn": "arn:aws:sagemaker:::x"}, params())
    sagemaker.add_client_error("describe_transform_job", "AccessDeniedException", "not authorized", 400)
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB], clients) == 3
    err = capsys.readouterr().err
    assert err == (
        "DescribeTransformJob failed: AccessDeniedException: not authorized; transform job nightly-2025-01-01 was "
        "created and keeps running; follow it: aws sagemaker describe-transform-job --transform-job-name "
        "nightly-2025-01-01\n"
    )


def test_split_type_none_alone_omits_the_batch_strategy(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = params(split_type="None", batch_strategy=None)
    assert "BatchStrategy" not in expected
    queue_job(sagemaker, expected, ["Completed"])
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--split-type", "None"], clients) == 0


def test_without_output_the_results_go_under_the_stacks_batch_output_path(
    clients: Clients, sagemaker: Stubber, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"s3://model-bucket/batch/{ENDPOINT}/output/"
    outputs = {"CreativeScoringDevAsyncModelName": MODEL, "CreativeScoringDevAsyncBatchOutputPath": path}
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})
    queue_job(sagemaker, to_api(build_request(JOB, MODEL, INPUT, f"{path}{JOB}/")), ["Completed"])
    argv = ["transform", "--endpoint", ENDPOINT, "--input", INPUT, "--job-name", JOB, "--poll-s", "0"]
    assert main(argv, clients) == 0
    assert f"output  {path}{JOB}/ " in capsys.readouterr().out


def test_without_output_model_still_reads_the_output_path_from_the_stack(
    clients: Clients, sagemaker: Stubber, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "s3://model-bucket/batch/x/output/"
    outputs = {"CreativeScoringDevAsyncBatchOutputPath": path}  # no ModelName: --model names it
    cloudformation.add_response("describe_stacks", describe_stacks_response(outputs), {"StackName": STACK})
    queue_job(sagemaker, to_api(build_request(JOB, "other-model", INPUT, f"{path}{JOB}/")), ["Completed"])
    argv = ["transform", "--endpoint", ENDPOINT, "--model", "other-model", "--input", INPUT, "--job-name", JOB]
    assert main([*argv, "--poll-s", "0"], clients) == 0


def test_without_output_a_stack_without_batch_output_path_exits_2(
    clients: Clients, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_with_model(cloudformation)
    assert main(["transform", "--endpoint", ENDPOINT, "--input", INPUT], clients) == 2
    captured = capsys.readouterr()
    assert "has no output CreativeScoringDevAsyncBatchOutputPath" in captured.err
    assert "pass --output S3_URI" in captured.err
    assert [service for service, _ in clients.asked] == ["cloudformation"]
    no_traceback(captured.out, captured.err)


def interrupt_on(stubber: Stubber, api: str) -> None:
    def interrupt(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    stubber.client.meta.events.register(
        f"provide-client-params.{stubber.client.meta.service_model.service_name}.{api}", interrupt
    )


def test_ctrl_c_while_waiting_exits_130_saying_how_to_follow_and_stop_the_job(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker.add_response("create_transform_job", {"TransformJobArn": "arn:aws:sagemaker:::x"}, params())
    interrupt_on(sagemaker, "DescribeTransformJob")
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--region", "eu-west-1"], clients) == 130
    captured = capsys.readouterr()
    assert captured.err == (
        f"interrupted: transform job {JOB} keeps running (Ctrl-C stops only the waiting). Follow it: aws sagemaker "
        f"describe-transform-job --transform-job-name {JOB} --region eu-west-1; stop it: aws sagemaker "
        f"stop-transform-job --transform-job-name {JOB} --region eu-west-1\n"
    )
    no_traceback(captured.out, captured.err)


def test_ctrl_c_during_create_says_the_job_may_exist(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_on(sagemaker, "CreateTransformJob")
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB], clients) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"interrupted while creating transform job {JOB}: it may exist and run. Check: ")
    assert f"stop-transform-job --transform-job-name {JOB}\n" in err


def test_ctrl_c_before_the_job_is_created_says_nothing_was_started(
    clients: Clients, cloudformation: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_on(cloudformation, "DescribeStacks")
    assert main(ARGS, clients) == 130
    assert capsys.readouterr().err == "interrupted before a transform job was created: nothing was started\n"
    assert [service for service, _ in clients.asked] == ["cloudformation"]


def test_json_leaves_out_the_response_metadata(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_job(sagemaker, params(), ["Completed"], ResponseMetadata={"RequestId": "r-1", "HTTPStatusCode": 200})
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--json"], clients) == 0
    assert "ResponseMetadata" not in json.loads(capsys.readouterr().out)


def test_no_wait_with_a_region_prints_the_follow_command_for_that_region(
    clients: Clients, sagemaker: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_job(sagemaker, params(), ["InProgress"])
    assert main([*ARGS, "--model", MODEL, "--job-name", JOB, "--no-wait", "--region", "eu-west-1"], clients) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"follow it: aws sagemaker describe-transform-job --transform-job-name {JOB} --region eu-west-1\n"
    )
