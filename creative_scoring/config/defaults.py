"""What we deploy unless an environment says otherwise: one file answers "what are the defaults?".

Facts that could not be confirmed against AWS here (image tags, registry accounts outside the common set)
are overridable per environment in cdk.json; docs/deployment.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_PREFIX = "models"
ASYNC_PREFIX = "async"  # async/<endpoint>/{input,output,failures}/ in the model bucket
BATCH_PREFIX = "batch"  # batch/<endpoint>/{input,output}/: what transform jobs of its Model may use
VARIANT_NAME = "AllTraffic"
PROJECT_TAG = "creative-scoring"

# SageMaker PyTorch inference Deep Learning Containers (TorchServe + sagemaker-pytorch-inference-toolkit).
PYTORCH_REPOSITORY = "pytorch-inference"
PYTORCH_CPU_TAG = "2.6.0-cpu-py312-ubuntu22.04-sagemaker"
PYTORCH_GPU_TAG = "2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
DLC_ACCOUNT = "763104351884"
DLC_ACCOUNT_BY_REGION = {  # aws/deep-learning-containers docs/reference/region_availability.md
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "me-west-1": "124382933778",
    "mx-central-1": "637423239942",
}
TRITON_REPOSITORY = "sagemaker-tritonserver"

# From the end of a minute until CloudWatch has SageMaker's datapoint for it and can fire an alarm. SageMaker
# publishes endpoint metrics every minute; the delay is not documented, about a minute is commonly seen
# (unconfirmed; rollout.alarm_delay_s overrides it). A rollout's bake must outlast an alarm's window, the partial
# minute of the traffic shift and this.
ALARM_DELAY_S = 60

# Data capture: requests and responses copied to data-capture/<endpoint>/ in the model bucket. SageMaker
# supports it on async endpoints; on inference components it is not confirmed, so it is off there unless
# data_capture.enabled says otherwise. Multi-model and serverless endpoints capture nothing (SageMaker's limits).
CAPTURE_PREFIX = "data-capture"
CAPTURE_SAMPLING_PERCENT = 10
CAPTURE_JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")

SCALING_ROLE_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE_NAME = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"

# Serverless endpoints: memory per concurrent invocation (1 GB steps), concurrency, and none kept warm.
SERVERLESS_MEMORY_MB = 2048
SERVERLESS_MAX_CONCURRENCY = 5
SERVERLESS_PROVISIONED_CONCURRENCY = 0
PROVISIONED_CONCURRENCY_UTILIZATION = 0.5  # target tracking, when provisioned concurrency is configured

# Async endpoints: requests handed to one container at a time, and notifications without the response body.
ASYNC_MAX_CONCURRENT_INVOCATIONS = 4
ASYNC_INCLUDE_RESPONSE_IN_NOTIFICATIONS = False
BACKLOG_PER_INSTANCE = 5  # target tracking on ApproximateBacklogSizePerInstance, the value AWS's guide uses
# Scaling out from zero adds one instance; wait this long before adding another while the first one starts.
SCALE_OUT_FROM_ZERO_COOLDOWN_S = 300

# Alarm thresholds of the serverless and async metrics.
MODEL_SETUP_P99_MS = 30_000.0  # serverless cold start: download, container start, model load
BACKLOG_SIZE = 50
OLDEST_REQUEST_AGE_S = 1800  # includes a scale-out from zero; requests expire after 6 h by default
INVOCATION_FAILURES_PER_MINUTE = 5

# Timeouts SageMaker allows between 60 and 3600 s; small archives need far less than the 600 s others default to.
MODEL_DOWNLOAD_TIMEOUT_S = 300
STARTUP_HEALTH_CHECK_TIMEOUT_S = 300

# BucketDeployment handler: sized for up to ~400 MB of archives (they are ~2.5 MB today).
DEPLOYMENT_MEMORY_MIB = 512
DEPLOYMENT_STORAGE_MIB = 1024
# The function that carries published versions to new inference code holds one archive (a few MiB) at a time;
# fifteen minutes (Lambda's limit) is room for hundreds of versions (docs/deployment.md, "Published versions").
CARRY_OVER_TIMEOUT_MIN = 15
CARRY_OVER_MEMORY_MIB = 1024


@dataclass(frozen=True)
class InstanceType:
    vcpus: int
    memory_gib: int
    gpus: int
    local_nvme: bool

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


# Instance families with local NVMe storage accept neither VolumeSizeInGB nor the endpoint-config KmsKeyId.
INSTANCE_TYPES = {
    "ml.t2.medium": InstanceType(2, 4, 0, False),
    "ml.m5.large": InstanceType(2, 8, 0, False),
    "ml.m5.xlarge": InstanceType(4, 16, 0, False),
    "ml.m5.2xlarge": InstanceType(8, 32, 0, False),
    "ml.m5d.xlarge": InstanceType(4, 16, 0, True),
    "ml.c5.large": InstanceType(2, 4, 0, False),
    "ml.c5.xlarge": InstanceType(4, 8, 0, False),
    "ml.c5.2xlarge": InstanceType(8, 16, 0, False),
    "ml.c5d.xlarge": InstanceType(4, 8, 0, True),
    "ml.c6i.xlarge": InstanceType(4, 8, 0, False),
    "ml.c6i.2xlarge": InstanceType(8, 16, 0, False),
    "ml.p3.2xlarge": InstanceType(8, 61, 1, False),
    "ml.g4dn.xlarge": InstanceType(4, 16, 1, True),
    "ml.g4dn.2xlarge": InstanceType(8, 32, 1, True),
    "ml.g4dn.12xlarge": InstanceType(48, 192, 4, True),
    "ml.g5.xlarge": InstanceType(4, 16, 1, True),
    "ml.g5.2xlarge": InstanceType(8, 32, 1, True),
    "ml.g5.4xlarge": InstanceType(16, 64, 1, True),
    "ml.g5.12xlarge": InstanceType(48, 192, 4, True),
    "ml.g5.48xlarge": InstanceType(192, 768, 8, True),
    "ml.g6.xlarge": InstanceType(4, 16, 1, True),
    "ml.g6.2xlarge": InstanceType(8, 32, 1, True),
    "ml.g6.12xlarge": InstanceType(48, 192, 4, True),
    "ml.p4d.24xlarge": InstanceType(96, 1152, 8, True),
}


def pytorch_image(region: str, *, gpu: bool) -> str:
    account = DLC_ACCOUNT_BY_REGION.get(region, DLC_ACCOUNT)
    tag = PYTORCH_GPU_TAG if gpu else PYTORCH_CPU_TAG
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{PYTORCH_REPOSITORY}:{tag}"
