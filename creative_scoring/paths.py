"""Where the project's files are: the one place that knows the repository root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"
INFERENCE_DIR = ROOT / "inference"  # the serving container's code folder
MODEL_ARTIFACTS = ROOT / "model_artifacts"
SAMPLES = INFERENCE_DIR / "samples"
LOCAL_STATE = ROOT / ".local-endpoint"  # the local endpoint's state, per environment (git-ignored)
