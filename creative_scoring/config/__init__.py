"""The deployment configuration: cdk.json read once, validated, and turned into one frozen type per endpoint.

Plain Python, imported by the CDK app, the local endpoint and the ops CLI; it imports none of them.
"""

from creative_scoring.config.load import CONTEXT_KEY, load_environments, read_context
from creative_scoring.config.model import (
    BLUE_GREEN,
    ROLLING,
    AlarmThresholds,
    AsyncConfig,
    AsyncInference,
    BaseEndpointConfig,
    ComponentModel,
    DataCapture,
    EndpointConfig,
    EnvironmentConfig,
    InferenceComponentsConfig,
    InstanceEndpointConfig,
    MultiModelConfig,
    Rollout,
    Scaling,
    Serverless,
    ServerlessConfig,
)
from creative_scoring.config.parse import parse_environments
from creative_scoring.config.reader import ConfigError
from creative_scoring.config.rules import ECR_IMAGE

__all__ = [
    "BLUE_GREEN",
    "CONTEXT_KEY",
    "ECR_IMAGE",
    "ROLLING",
    "AlarmThresholds",
    "AsyncConfig",
    "AsyncInference",
    "BaseEndpointConfig",
    "ComponentModel",
    "ConfigError",
    "DataCapture",
    "EndpointConfig",
    "EnvironmentConfig",
    "InferenceComponentsConfig",
    "InstanceEndpointConfig",
    "MultiModelConfig",
    "Rollout",
    "Scaling",
    "Serverless",
    "ServerlessConfig",
    "load_environments",
    "parse_environments",
    "read_context",
]
