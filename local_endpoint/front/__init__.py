"""The runtime API front: what the AWS SDKs talk to, copying SageMaker's wire contract.

``POST /endpoints/{name}/invocations`` validates the request as SageMaker does, routes it to a model in the
container (``TargetModel`` on a multi-model endpoint, ``InferenceComponentName`` on an inference-component
endpoint), and rewrites the container's answer: 2xx passes through with SageMaker's headers, 4xx and 5xx
become a 424 ModelError carrying the container's status and message. ``POST /endpoints/{name}/async-invocations``
queues an asynchronous request. ``GET /_local/endpoints`` lists the endpoints and the models loaded in them.

- `app`: the application factory, its routes and its lifespan (model server, preloads, async workers).
- `state`: what the routes of a running front share.
- `realtime`: InvokeEndpoint, one handler per hosting mode.
- `async_invoke`: InvokeEndpointAsync, and the model call of the async workers.
- `request_log`: errors answered as SageMaker answers them, and one log line per request.

Header names and checks are in `local_endpoint.headers`, error shapes in `local_endpoint.errors`.
"""
