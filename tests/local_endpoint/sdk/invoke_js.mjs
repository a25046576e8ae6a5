// One InvokeEndpoint call with the stock AWS SDK for JavaScript v3, for the Python tests (clients.py::invoke_js).
//
// stdin:  {"endpoint_url": "http://127.0.0.1:PORT", "region": "us-east-1",
//          "params": {"EndpointName": "...", "Body": "<UTF-8 text>", "ContentType": "...", ...}}
// stdout: ONE JSON line, what the SDK returned or raised:
//   {"ok": true, "ContentType", "InvokedProductionVariant", "CustomAttributes", "Body", "httpStatusCode", "requestId"}
//   {"ok": false, "name", "message", "fault", "httpStatusCode", "requestId",
//    "OriginalStatusCode", "OriginalMessage", "LogStreamArn"}
// Members the SDK did not give are null. The exit code is 0 for both; non-zero only when this script breaks.
//
// Run from the repository root so that node_modules/ resolves (npm ci).
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";

const PARAMS = [
  "EndpointName",
  "Body",
  "ContentType",
  "Accept",
  "CustomAttributes",
  "TargetModel",
  "TargetVariant",
  "InferenceId",
  "InferenceComponentName",
];

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const orNull = (value) => (value === undefined ? null : value);

function describeError(error) {
  const metadata = error?.$metadata ?? {};
  return {
    ok: false,
    name: orNull(error?.name),
    message: orNull(error?.message),
    fault: orNull(error?.$fault),
    httpStatusCode: orNull(metadata.httpStatusCode),
    requestId: orNull(metadata.requestId),
    OriginalStatusCode: orNull(error?.OriginalStatusCode),
    OriginalMessage: orNull(error?.OriginalMessage),
    LogStreamArn: orNull(error?.LogStreamArn),
  };
}

async function main() {
  const request = await readStdin();
  const unknown = Object.keys(request.params ?? {}).filter((key) => !PARAMS.includes(key));
  if (unknown.length > 0) {
    throw new Error(`unsupported InvokeEndpoint parameters: ${unknown.join(", ")}`);
  }
  const input = { ...request.params };
  if (typeof input.Body === "string") {
    input.Body = new TextEncoder().encode(input.Body);
  }
  const client = new SageMakerRuntimeClient({
    endpoint: request.endpoint_url,
    region: request.region ?? "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  let result;
  try {
    const output = await client.send(new InvokeEndpointCommand(input));
    result = {
      ok: true,
      ContentType: orNull(output.ContentType),
      InvokedProductionVariant: orNull(output.InvokedProductionVariant),
      CustomAttributes: orNull(output.CustomAttributes),
      Body: output.Body == null ? null : new TextDecoder("utf-8").decode(output.Body),
      httpStatusCode: orNull(output.$metadata?.httpStatusCode),
      requestId: orNull(output.$metadata?.requestId),
    };
  } catch (error) {
    result = describeError(error);
  } finally {
    client.destroy();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

await main();
