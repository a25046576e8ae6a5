"""What we deploy unless an environment says otherwise."""

from __future__ import annotations

from creative_scoring.config.defaults import pytorch_image


def test_image_registry_follows_the_region() -> None:
    assert pytorch_image("us-east-1", gpu=True).startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    assert pytorch_image("af-south-1", gpu=False).startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert pytorch_image("eu-west-1", gpu=True).endswith("-gpu-py312-cu124-ubuntu22.04-sagemaker")
