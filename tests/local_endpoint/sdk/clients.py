"""Call a local SageMaker runtime endpoint with stock AWS clients other than boto3, and capture what each gives back.

- ``invoke_js``: the AWS SDK for JavaScript v3 (``@aws-sdk/client-sagemaker-runtime`` from package.json; ``npm ci``),
  through ``invoke_js.mjs``.
- ``invoke_cli``: the AWS CLI v1 (``awscli`` from requirements-clients.txt), ``aws sagemaker-runtime invoke-endpoint``.

Both take the InvokeEndpoint parameters by their API names (``EndpointName``, ``Body``, ``ContentType``, ...), send
dummy credentials and make exactly one attempt (no retries), so a test sees the first answer of the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creative_scoring.paths import ROOT

JS_SCRIPT = Path(__file__).resolve().with_name("invoke_js.mjs")
JS_SDK_PACKAGE = "@aws-sdk/client-sagemaker-runtime"
REGION = "us-east-1"
TIMEOUT_S = 60.0

# InvokeEndpoint parameter -> AWS CLI option. Body and EndpointName are handled apart.
_CLI_OPTIONS = {
    "ContentType": "--content-type",
    "Accept": "--accept",
    "CustomAttributes": "--custom-attributes",
    "TargetModel": "--target-model",
    "TargetVariant": "--target-variant",
    "InferenceId": "--inference-id",
    "InferenceComponentName": "--inference-component-name",
}
_JS_PARAMS = frozenset({"EndpointName", "Body", *_CLI_OPTIONS})


class ClientSetupError(RuntimeError):
    """A client this module drives is not installed, or its harness broke (not an answer of the endpoint)."""


@dataclass(frozen=True)
class CliResult:
    """What one ``aws sagemaker-runtime invoke-endpoint`` run gave back."""

    returncode: int
    stdout: dict[str, Any] | None  # the JSON the CLI printed (the response's non-body members), None if none
    stderr: str
    body: bytes | None  # the response body the CLI wrote to outfile, None if it wrote no file


def _check_params(params: dict[str, str]) -> None:
    unknown = sorted(set(params) - _JS_PARAMS)
    if unknown:
        raise TypeError(f"unsupported InvokeEndpoint parameters: {', '.join(unknown)}")
    for required in ("EndpointName", "Body"):
        if required not in params:
            raise TypeError(f"missing required InvokeEndpoint parameter {required}")


def invoke_js(endpoint_url: str, **params: str) -> dict[str, Any]:
    """Call InvokeEndpoint with the JavaScript SDK v3; returns the one JSON object ``invoke_js.mjs`` prints.

    ``{"ok": True, ...}`` on success, ``{"ok": False, "name": <exception class>, ...}`` when the SDK raised.
    """
    _check_params(params)
    if not (ROOT / "node_modules" / JS_SDK_PACKAGE / "package.json").is_file():
        raise ClientSetupError(f"{JS_SDK_PACKAGE} is not in {ROOT / 'node_modules'}: run `npm ci` in {ROOT}")
    node = shutil.which("node")
    if node is None:
        raise ClientSetupError("node is not on PATH: the JavaScript SDK harness needs Node.js 20 or later")
    request = {"endpoint_url": endpoint_url, "region": REGION, "params": params}
    proc = subprocess.run(
        [node, str(JS_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT_S,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or len(lines) != 1:
        raise ClientSetupError(
            f"invoke_js.mjs failed (exit {proc.returncode}):\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    result: dict[str, Any] = json.loads(lines[0])
    return result


def aws_executable() -> str:
    """The ``aws`` of this venv (pip install -r requirements-clients.txt), else the first on PATH."""
    beside = Path(sys.executable).parent / "aws"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("aws")
    if found is None:
        raise ClientSetupError(
            f"no aws executable next to {sys.executable} or on PATH: pip install -r requirements-clients.txt"
        )
    return found


def _cli_env(config_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    empty = config_dir / "empty"
    empty.touch()
    env.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION=REGION,
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    return env


def invoke_cli(endpoint_url: str, outfile: Path, **params: str) -> CliResult:
    """Run ``aws sagemaker-runtime invoke-endpoint`` against ``endpoint_url``, the response body going to ``outfile``.

    ``Body`` is written to a temporary file and passed as ``fileb://`` so that CLI v1 and v2 both send its raw
    UTF-8 bytes (v2 would read a plain ``--body`` as base64). ``outfile`` is removed first, so ``body`` is None
    when the CLI wrote nothing (on an error).
    """
    _check_params(params)
    outfile = Path(outfile)
    outfile.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="invoke-cli-") as tmp:
        tmp_dir = Path(tmp)
        body_file = tmp_dir / "body"
        body_file.write_bytes(params["Body"].encode("utf-8"))
        command = [
            aws_executable(),
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-url",
            endpoint_url,
            "--endpoint-name",
            params["EndpointName"],
            "--body",
            f"fileb://{body_file}",
        ]
        for name, option in _CLI_OPTIONS.items():
            if name in params:
                command += [option, params[name]]
        command += ["--output", "json", str(outfile)]
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=_cli_env(tmp_dir),
            timeout=TIMEOUT_S,
            check=False,
        )
    stdout: dict[str, Any] | None = None
    if proc.stdout.strip():
        try:
            stdout = json.loads(proc.stdout)
        except json.JSONDecodeError:
            stdout = None
    body = outfile.read_bytes() if outfile.exists() else None
    return CliResult(returncode=proc.returncode, stdout=stdout, stderr=proc.stderr, body=body)
