"""Chaos for local async inference with the defaults: requests are submitted while the local endpoint, its own
S3 server, or both are killed with SIGKILL at random moments; then every accepted request's ending is counted.

The endpoint serves the dev environment (``creative-scoring-dev-async``) on loopback with its defaults: its own
S3 server, data under a fresh state folder. A client submits ``--requests`` requests with boto3
``invoke_endpoint_async`` at ``--rate`` per second, each with its own input object (most are creatives; some hold
a body the model refuses, some name an input that does not exist: those must end in a failure object). A call
that gets no answer (the endpoint is down) is tried again with a new InferenceId; only a 202 counts as
accepted. Meanwhile ``--kills`` SIGKILLs hit, at random moments: the endpoint's process group (the kernel then
kills its S3 server), the S3 server's process group alone (the endpoint starts it again), or both at once.
A killed endpoint is started again at once on the same state folder, so a kill may also hit one that is
still starting. When the queue has drained, each accepted
request ended as:

- completed: its output object, holding one prediction per creative, and no failure object;
- failed: its failure object and no output, for a request that had to fail;
- wrong: the other ending than it should have had, or an output that is not the model's answer;
- duplicated: both an output and a failure object;
- lost: neither.

Notifications are counted apart (they are at least once, so repeats are allowed and misses are not). The exit
status is 1 unless lost, duplicated, wrong, missing notifications and endpoint exits (other than by a kill)
are all 0. JSON on stdout, progress on stderr.

    python -m bench.chaos [--requests 300] [--kills 6] [--rate 20] [--seed 7] [--timeout 900]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench.processes import progress
from creative_scoring.net import free_port, wait_until_serving
from local_endpoint.s3 import is_not_found
from training.dataset import generate

ASYNC_ENDPOINT = "creative-scoring-dev-async"
INPUTS = "chaos-inputs"
CREATIVES_PER_REQUEST = 5
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
KINDS = ("endpoint", "s3", "both")


@dataclass
class Request:
    index: int
    kind: str  # "good", "refused" (a body the model answers 400 to) or "missing" (no input object)
    accepted: dict[str, Any] | None = None  # the 202's fields
    unanswered: list[str] = field(default_factory=list)  # InferenceIds of calls that got no answer
    cut_body: bool = False  # its 202 came without its body (the endpoint was killed while answering)

    @property
    def key(self) -> str:
        return f"in/{self.index:05d}.json"


class Endpoint:
    """``creative-scoring serve`` in its own session, started again after each kill."""

    def __init__(self, work: Path) -> None:
        self.work, self.port = work, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        command = [sys.executable, "-m", "creative_scoring", "serve", "--env", "dev", "--port", str(self.port)]
        command += ["--state-dir", str(self.work / "state"), "--workdir", str(self.work / "models")]
        command += ["--log-level", "warning"]
        with (self.work / "endpoint.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        self.starts += 1

    def wait_ready(self, timeout_s: float = 180) -> None:
        assert self.process is not None
        wait_until_serving(f"{self.url}/_local/endpoints", timeout_s=timeout_s, process=self.process)

    def s3_pid(self) -> int | None:
        try:
            pid = json.loads((self.work / "state" / "s3" / "server.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None
        return pid if isinstance(pid, int) else None

    def kill(self, kind: str) -> str:
        """SIGKILL the endpoint's process group, the S3 server's, or both at once; says what was hit."""
        targets, hit = [], []
        if kind in ("endpoint", "both"):
            if self.process is not None and self.process.poll() is None:
                targets.append(("endpoint", self.process.pid))
            else:
                hit.append("endpoint had exited")  # by itself: the endpoint log says why
        if kind in ("s3", "both"):
            if (pid := self.s3_pid()) is not None and self._serves_s3(pid):
                targets.append(("s3", pid))
            else:
                hit.append("s3 already down")  # killed a moment before and not running again yet
        for name, pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
                hit.append(name)
        if "endpoint" in hit or "endpoint had exited" in hit:
            assert self.process is not None
            self.process.wait()
            self.start()
        return "+".join(hit)

    def _serves_s3(self, pid: int) -> bool:
        """Whether ``pid`` is a live SeaweedFS serving this run's state folder (not a stale or reused pid)."""
        try:
            process = psutil.Process(pid)
            data = f"-dir={(self.work / 'state' / 's3' / 'data').resolve()}"
            return process.status() != psutil.STATUS_ZOMBIE and data in process.cmdline()
        except psutil.Error:
            return False

    def queue(self) -> dict[str, int]:
        described = httpx.get(f"{self.url}/_local/endpoints", timeout=5, trust_env=False).json()
        endpoint = next(e for e in described["endpoints"] if e["name"] == ASYNC_ENDPOINT)
        counts: dict[str, int] = endpoint["async"]["requests"]
        return counts

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests to submit (default 300)")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs at random moments (default 6)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests submitted per second (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the kill moments and kinds (default 7)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds (default 900)")
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep it (logs, state); default: a temporary one"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.kills < 0 or args.rate <= 0 or args.timeout <= 0:
        parser.error("--requests must be at least 1, --kills at least 0, --rate and --timeout above 0")

    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.timeout
    requests = [
        Request(i, "missing" if i % 20 == 7 else "refused" if i % 20 == 13 else "good") for i in range(args.requests)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        endpoint = Endpoint(work)
        endpoint.start()
        try:
            endpoint.wait_ready()
            s3_url = json.loads((endpoint.work / "state" / "s3" / "server.json").read_text())["endpoint_url"]
            s3 = boto3.client(
                "s3",
                endpoint_url=s3_url,
                config=Config(retries={"mode": "standard", "max_attempts": 10}),
                **CREDENTIALS,
            )
            _upload(s3, requests)
            window = args.requests / args.rate
            moments = sorted(rng.uniform(0.5, window + 5) for _ in range(args.kills))
            kinds = [KINDS[i % len(KINDS)] for i in range(args.kills)]
            rng.shuffle(kinds)
            progress(f"chaos: {args.requests} requests over {window:.0f} s, {args.kills} kills at "
                     f"{', '.join(f'{m:.1f} s' for m in moments)}")  # fmt: skip
            submitter = threading.Thread(target=_submit_all, args=(endpoint, requests, args.rate, deadline))
            started = time.monotonic()
            submitter.start()
            kills: list[dict[str, Any]] = []
            for moment, kind in zip(moments, kinds, strict=True):
                time.sleep(max(0.0, started + moment - time.monotonic()))
                queued = _queued(endpoint)
                at = time.monotonic() - started
                hit = endpoint.kill(kind)
                kills.append({"at_s": round(at, 1), "kind": kind, "hit": hit, "queued_before": queued})
                progress(f"  {at:6.1f} s: SIGKILL {kind} ({hit}), {queued} requests queued")
            submitter.join(max(1.0, deadline - time.monotonic()))
            endpoint.wait_ready(max(1.0, deadline - time.monotonic()))
            _drain(endpoint, deadline)
            drained_s = time.monotonic() - started
            report = _count(s3, requests, endpoint.work / "state" / "notifications")
        finally:
            endpoint.stop()
        report.update(
            {
                "kills": kills,
                "endpoint_exits_by_itself": sum("endpoint had exited" in str(k["hit"]) for k in kills),
                "endpoint_starts": endpoint.starts,
                "seconds_to_drain": round(drained_s, 1),
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            }
        )
    json.dump(report, sys.stdout, indent=1)
    print()
    clean = (
        report["lost"] == report["duplicated"] == report["wrong"] == report["notifications_missing"] == 0
        and report["endpoint_exits_by_itself"] == 0
    )
    verdict = "0 lost and 0 duplicated" if clean else "NOT clean"
    progress(
        f"accepted {report['accepted']}, completed {report['completed']}, failed {report['failed']}, "
        f"lost {report['lost']}, duplicated {report['duplicated']}, wrong {report['wrong']}, notifications missing "
        f"{report['notifications_missing']}: {verdict}"
    )
    return 0 if verdict.startswith("0") else 1


def _upload(s3: Any, requests: list[Request]) -> None:
    s3.create_bucket(Bucket=INPUTS)
    creatives = generate(len(requests) * CREATIVES_PER_REQUEST, seed=5).creatives
    for r in requests:
        if r.kind == "missing":
            continue
        body = (
            b'{"instances": [{"headline": 1}]}'
            if r.kind == "refused"
            else json.dumps(
                {"instances": creatives[r.index * CREATIVES_PER_REQUEST : (r.index + 1) * CREATIVES_PER_REQUEST]}
            ).encode()
        )
        s3.put_object(Bucket=INPUTS, Key=r.key, Body=body)


def _submit_all(endpoint: Endpoint, requests: list[Request], rate: float, deadline: float) -> None:
    """Submit each request once accepted; a call that gets no answer is tried again under a new InferenceId."""
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
    runtime = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, config=config, **CREDENTIALS)
    started = time.monotonic()
    for r in requests:
        time.sleep(max(0.0, started + r.index / rate - time.monotonic()))
        while r.accepted is None and time.monotonic() < deadline:
            inference_id = f"chaos-{r.index:05d}-{len(r.unanswered)}"
            try:
                answer = runtime.invoke_endpoint_async(
                    EndpointName=ASYNC_ENDPOINT,
                    InputLocation=f"s3://{INPUTS}/{r.key}",
                    ContentType="application/json",
                    InferenceId=inference_id,
                )
                if "InferenceId" not in answer:  # killed between the headers (the locations) and the JSON body:
                    r.cut_body = True  # botocore takes the truncated body as empty
                r.accepted = {"InferenceId": inference_id, **answer}
            except (BotoCoreError, ClientError):
                r.unanswered.append(inference_id)
                time.sleep(0.2)


def _queued(endpoint: Endpoint) -> int | None:
    """The requests queued now (None while the endpoint does not answer)."""
    try:
        return endpoint.queue().get("queued", 0)
    except (httpx.HTTPError, ValueError, StopIteration, KeyError):
        return None


def _drain(endpoint: Endpoint, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if endpoint.queue().get("queued", 0) == 0:
                return
        except (httpx.HTTPError, StopIteration, KeyError):
            pass
        time.sleep(0.5)
    progress("chaos: the queue did not drain before --timeout; what is still queued counts as lost")


def _get(s3: Any, uri: str) -> bytes | None:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if is_not_found(e):
            return None
        raise
    return body


def _count(s3: Any, requests: list[Request], notifications: Path) -> dict[str, Any]:
    notified: Counter[str] = Counter()
    for path in notifications.glob(f"{ASYNC_ENDPOINT}-*.jsonl"):
        notified.update(json.loads(line)["inferenceId"] for line in path.read_text().splitlines())
    endings: Counter[str] = Counter()
    for r in requests:
        if r.accepted is None:
            endings["not_accepted"] += 1
            continue
        output, failure = _get(s3, r.accepted["OutputLocation"]), _get(s3, r.accepted["FailureLocation"])
        if output is not None and failure is not None:
            endings["duplicated"] += 1
        elif output is None and failure is None:
            endings["lost"] += 1
        elif (output is not None) != (r.kind == "good") or (output is not None and not _is_answer(output)):
            endings["wrong"] += 1
        else:
            endings["completed" if output is not None else "failed"] += 1
    accepted_ids = [r.accepted["InferenceId"] for r in requests if r.accepted]
    unanswered = [i for r in requests for i in r.unanswered]
    return {
        "accepted": len(accepted_ids),
        **{k: endings[k] for k in ("completed", "failed", "lost", "duplicated", "wrong", "not_accepted")},
        "calls_without_answer": len(unanswered),
        "answers_without_body": sum(r.cut_body for r in requests),
        "calls_without_answer_yet_queued": sum(1 for i in unanswered if notified[i]),
        "notifications_missing": sum(1 for i in accepted_ids if notified[i] == 0),
        "notifications_repeated": sum(1 for i in accepted_ids if notified[i] > 1),
    }


def _is_answer(output: bytes) -> bool:
    try:
        return len(json.loads(output)["predictions"]) == CREATIVES_PER_REQUEST
    except (ValueError, KeyError, TypeError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
