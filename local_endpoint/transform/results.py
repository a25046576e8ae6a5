"""What a job did: per input (`FileResult`, with its failed mini-batches, `BatchFailure`) and in all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local_endpoint.transform.job import TransformJob


@dataclass(frozen=True)
class BatchFailure:
    """One failed mini-batch; for SplitType Line, its records are input lines first_line..last_line."""

    status: int | None  # the model server's HTTP status; None when it was never asked (read or write error)
    message: str
    records: int
    first_line: int | None = None
    last_line: int | None = None
    line: int | None = None  # the input line the model's message names (instances[i] / line n), if any
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "records": self.records,
            "status": self.status,
            "message": self.message,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class FileResult:
    key: str
    status: str  # "Completed", "Failed" or "Skipped" (finished by an earlier run)
    records: int
    failed_records: int = 0
    invocations: int = 0
    retries: int = 0
    failures: tuple[BatchFailure, ...] = ()
    location: str | None = None  # the .out, or the failure report


@dataclass
class TransformResult:
    job: TransformJob
    model_archive: str
    input_uri: str
    output_uri: str
    files: list[FileResult]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.status == "Failed" for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        def count(status: str) -> int:
            return sum(f.status == status for f in self.files)

        def records(status: str) -> int:
            return sum(f.records for f in self.files if f.status == status)

        done = [f for f in self.files if f.status != "Skipped"]
        processed = sum(f.records for f in done)
        failed_records = sum(f.failed_records for f in self.files)
        return {
            "status": "Completed" if self.ok else "Failed",
            "model": self.model_archive,
            "input": self.input_uri,
            "output": self.output_uri,
            "settings": self.job.sagemaker_settings(),
            "files": {
                "total": len(self.files),
                "succeeded": count("Completed"),
                "failed": count("Failed"),
                "skipped": count("Skipped"),
            },
            "records": {
                "succeeded": records("Completed"),
                "failed": failed_records,
                # answered by the model, but in an input that failed, so not written
                "discarded": records("Failed") - failed_records,
                "skipped": records("Skipped"),
            },
            "invocations": sum(f.invocations for f in self.files),
            "retries": sum(f.retries for f in self.files),
            "seconds": round(self.seconds, 3),
            "records_per_second": round(processed / self.seconds, 1) if self.seconds > 0 else None,
            "failures": [
                {
                    "input": f.key,
                    "report": f.location,
                    "failed_records": f.failed_records,
                    "first_error": f.failures[0].to_dict() if f.failures else None,
                }
                for f in self.files
                if f.status == "Failed"
            ],
            "notes": self.notes,
        }
