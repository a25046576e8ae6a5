"""A SageMaker batch transform job on this machine: ``creative-scoring transform`` (docs/local-batch-transform.md).

The model archive is extracted and loaded into an in-process `EmbeddedContainer`; every mini-batch goes through
``container.invoke`` exactly as SageMaker POSTs ``/invocations`` (Content-Type and Accept headers). Inputs and
outputs are a local folder or an S3 prefix (any S3 endpoint: AWS or a local one such as the local endpoint's).

Semantics copied from SageMaker (contract §12), the settings checked by the rules both transforms share
(`creative_scoring.artifacts.transform_request`):

- ``SplitType`` ``None`` sends each input object whole; ``Line`` splits it into records at newlines.
- ``CompressionType`` ``Gzip``: each input object is decompressed before it is split; outputs are not compressed.
- ``BatchStrategy`` (needs ``SplitType Line``): ``SingleRecord`` sends one record per request,
  ``MultiRecord`` as many records as fit in ``MaxPayloadInMB``; mini-batches never span input files.
- ``AssembleWith`` ``None`` concatenates the responses; ``Line`` ends each response with a newline.
- One output per input object, ``<relative path>.out``, records in input order, written only when the whole
  input succeeded; other inputs carry on; the job fails when any input failed.
- The container sees ``SAGEMAKER_BATCH=true``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``,
  ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``, ``SAGEMAKER_BATCH_STRATEGY`` (when set) and the job's
  ``Environment`` while the job runs.

Local additions: ``<relative path>.out.failed.json`` next to where the ``.out`` would be, naming each failed
mini-batch (input line numbers, HTTP status, message); a checkpoint in the output location of finished inputs
with their size and ETag, so a rerun skips them and redoes unfinished, failed or changed ones.

One module per part: ``job`` (settings and checks), ``storage`` (folders, S3), ``model`` (the archive),
``records`` (split, assemble), ``runner`` (the job), ``checkpoint``, ``results``, ``progress``, ``cli``.
"""

from creative_scoring.artifacts.transform_request import TransformError
from local_endpoint.transform.job import TransformJob
from local_endpoint.transform.results import FileResult, TransformResult
from local_endpoint.transform.runner import run_transform, transform

__all__ = ["FileResult", "TransformError", "TransformJob", "TransformResult", "run_transform", "transform"]
