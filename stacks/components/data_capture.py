"""Data capture of one endpoint: SageMaker copies a sample of requests and responses to the model bucket.

The destination is ``data-capture/``; SageMaker writes under ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` below it
(Model Monitor's documented layout), so each endpoint's role may write ``data-capture/<endpoint>/`` only.
Records are JSON Lines, encrypted with the bucket key; JSON content types are recorded as text.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sm
from constructs import Construct

from creative_scoring.config import DataCapture, defaults
from stacks.components.model_store import ModelStore
from stacks.nag import acknowledge_prefixes


class EndpointDataCapture(Construct):
    """``config``: the EndpointConfig's ``DataCaptureConfig``; the role may write the captures and encrypt them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        capture: DataCapture,
        store: ModelStore,
        role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = f"{defaults.CAPTURE_PREFIX}/{endpoint_name}/"
        ec = sm.CfnEndpointConfig
        self.config = ec.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=capture.sampling_percent,
            destination_s3_uri=store.bucket.s3_url_for_object(f"{defaults.CAPTURE_PREFIX}/"),
            kms_key_id=store.key.key_arn,
            capture_options=[ec.CaptureOptionProperty(capture_mode=mode) for mode in ("Input", "Output")],
            capture_content_type_header=ec.CaptureContentTypeHeaderProperty(
                json_content_types=list(defaults.CAPTURE_JSON_CONTENT_TYPES)
            ),
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{store.bucket.bucket_arn}/{self.prefix}*"])
        )
        # DataCaptureConfig.KmsKeyId names the bucket key: SageMaker encrypts the captures with it as the role.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Encrypt", "kms:GenerateDataKey"], resources=[store.key.key_arn])
        )
        acknowledge_prefixes(
            role, store.bucket, {self.prefix: "SageMaker names each capture file by variant, date, hour and a uuid"}
        )
