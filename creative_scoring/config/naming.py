"""The only place stack, alarm and dashboard names are composed (alarm names are referenced by rollbacks)."""

from __future__ import annotations


def stack_name(environment: str) -> str:
    """The stack of one environment, such as ``CreativeScoring-dev``: what ``cdk deploy`` and scripts name."""
    return f"CreativeScoring-{environment}"


def component_name(endpoint_name: str, model_name: str) -> str:
    """The inference component's name: what clients send as ``InferenceComponentName``."""
    return f"{endpoint_name}-{model_name}"[:63].rstrip("-")


def alarm_name(subject: str, metric: str, severity: str) -> str:
    return f"{subject}-{metric}-{severity}"


def output_id(endpoint_name: str, what: str) -> str:
    """A stack output id such as ``CreativeScoringDevEndpointName``, stable for scripts that read outputs."""
    return "".join(part.capitalize() for part in endpoint_name.split("-")) + what


def dashboard_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-serving"
