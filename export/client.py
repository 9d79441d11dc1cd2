"""Stylize images through TensorFlow Serving, over REST or gRPC.

    python export/client.py [--protocol=rest] [--server=localhost:8501] \
        [--model=uegan] [--version=N] [--mode=bytes|tensor] \
        photo.jpg anime.png
    python export/client.py --protocol=grpc --server=localhost:8500 \
        photo.jpg anime.png

Two ways to call the model exported by `tools/export_tflite.py`:

- `--mode=bytes` (default): the file's JPEG/PNG bytes go to the
  `serve_bytes` signature, which decodes, stylizes and returns PNG bytes
  (over REST as `{"b64": ...}` JSON objects: TF Serving base64-decodes
  string inputs sent that way and base64-encodes string outputs whose name
  ends in "_bytes", here "png_bytes");
- `--mode=tensor`: the image is decoded here and sent as uint8
  `[1, H, W, 3]` to `serving_default`, which returns uint8 `[1, H, W, 3]`
  (over REST as nested JSON lists: simple, but about 4x larger than the
  pixels).

The request/response code is in pure functions (`build_predict_request`,
`parse_predict_response`) that tests drive without a server. REST needs
only numpy and Pillow; gRPC needs `tensorflow-serving-api` (which pulls in
TensorFlow). This file does not import `uegan_tf`, so it can be copied to a
client machine on its own.
"""

import argparse
import base64
import io
import json
import sys
import urllib.error
import urllib.request

import numpy as np

DEFAULT_MODEL = "uegan"
# mode -> (signature, input name, output name); matches
# uegan_tf/export/signatures.py.
MODES = {
    "bytes": ("serve_bytes", "image_bytes", "png_bytes"),
    "tensor": ("serving_default", "images", "stylized"),
}
PROTOCOLS = ("rest", "grpc")
DEFAULT_SERVERS = {"rest": "localhost:8501", "grpc": "localhost:8500"}
# Images easily exceed gRPC's default 4 MB message limit.
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


class ServingError(Exception):
    """The server answered with an error, or with something unexpected."""


def _mode_of(inputs):
    if isinstance(inputs, np.ndarray):
        if (
            inputs.dtype != np.uint8
            or inputs.ndim != 4
            or (inputs.shape[-1] != 3)
        ):
            raise ValueError(
                "tensor inputs must be uint8 [N, H, W, 3], got "
                f"{inputs.dtype} {inputs.shape}"
            )
        return "tensor"
    inputs = list(inputs)
    if not inputs or not all(isinstance(b, bytes) for b in inputs):
        raise ValueError("bytes inputs must be a non-empty list of bytes")
    return "bytes"


def build_predict_request(
    inputs, protocol="rest", model_name=DEFAULT_MODEL, version=None
):
    """Build a Predict request for either signature.

    Args:
        inputs: a list of encoded images (bytes, for `serve_bytes`), or a
            uint8 array `[N, H, W, 3]` (for `serving_default`).
        protocol: "rest" or "grpc".
        model_name: the served model name (gRPC only; REST puts it in the
            URL, see `rest_url`).
        version: optional model version (gRPC only; REST: `rest_url`).

    Returns:
        REST: the JSON body as a dict (row format, "instances").
        gRPC: a `tensorflow_serving.apis.predict_pb2.PredictRequest`.

    Raises:
        ValueError: bad inputs or protocol.
    """
    mode = _mode_of(inputs)
    signature, key, _ = MODES[mode]
    if protocol == "rest":
        if mode == "bytes":
            instances = [
                {key: {"b64": base64.b64encode(b).decode("ascii")}}
                for b in inputs
            ]
        else:
            instances = [{key: image.tolist()} for image in inputs]
        return {"signature_name": signature, "instances": instances}
    if protocol == "grpc":
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = int(version)
        value = (
            inputs if mode == "tensor" else np.array(list(inputs), dtype=object)
        )
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return request
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def _rest_value(value):
    # {"b64": ...} for "_bytes" string outputs; nested lists for tensors.
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict) and len(value) == 1:
        return _rest_value(next(iter(value.values())))
    return value


def parse_predict_response(response, protocol="rest"):
    """Extract the stylized images from a Predict response.

    Args:
        response: REST: the decoded JSON dict; gRPC: a `PredictResponse`.
        protocol: "rest" or "grpc".

    Returns:
        A list of PNG bytes (bytes signature), or uint8 `[N, H, W, 3]`
        (tensor signature).

    Raises:
        ServingError: an error response, or no known output in it.
    """
    if protocol == "rest":
        if "error" in response:
            raise ServingError(str(response["error"]))
        if "predictions" not in response:
            raise ServingError(
                f"no 'predictions' in response (keys {sorted(response)})"
            )
        values = [_rest_value(v) for v in response["predictions"]]
        if values and all(isinstance(v, bytes) for v in values):
            return values
        return np.asarray(values, dtype=np.uint8)
    if protocol == "grpc":
        import tensorflow as tf

        for _, _, out in MODES.values():
            if out in response.outputs:
                array = tf.make_ndarray(response.outputs[out])
                if array.dtype == object:
                    return [bytes(b) for b in array.ravel()]
                return array.astype(np.uint8)
        raise ServingError(
            f"no known output in response (has {sorted(response.outputs)})"
        )
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def rest_url(server, model_name=DEFAULT_MODEL, version=None):
    """TF Serving's predict URL, e.g. http://host:8501/v1/models/uegan:predict."""
    base = server if "://" in server else f"http://{server}"
    path = f"/v1/models/{model_name}"
    if version is not None:
        path += f"/versions/{int(version)}"
    return f"{base.rstrip('/')}{path}:predict"


def rest_predict(url, body, timeout=60.0):
    """POST a JSON body; return the decoded JSON answer.

    Raises:
        ServingError: HTTP or connection error (with the server's message).
    """
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise ServingError(f"HTTP {e.code} from {url}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise ServingError(f"cannot reach {url}: {e}") from None


def grpc_predict(server, request, timeout=60.0):
    """Send a PredictRequest over an insecure channel; return the response.

    Raises:
        ServingError: RPC failure (with the status and message).
    """
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server, options=GRPC_OPTIONS) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            raise ServingError(
                f"gRPC {e.code().name} from {server}: {e.details()}"
            ) from None


def decode_image(data):
    """Encoded image bytes -> uint8 RGB `[H, W, 3]` (Pillow)."""
    from PIL import Image
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def encode_png(rgb):
    """uint8 RGB `[H, W, 3]` -> PNG bytes (Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB").save(
        buf, format="PNG"
    )
    return buf.getvalue()


def stylize(
    data,
    server=None,
    protocol="rest",
    model_name=DEFAULT_MODEL,
    version=None,
    mode="bytes",
    timeout=60.0,
):
    """Stylize one encoded image through TF Serving.

    Args:
        data: the image file's bytes (JPEG, PNG, ...).
        server: host:port (default: localhost:8501 REST, :8500 gRPC).
        protocol: "rest" or "grpc".
        model_name: served model name.
        version: model version (default: the server's latest).
        mode: "bytes" (`serve_bytes`) or "tensor" (`serving_default`).
        timeout: seconds.

    Returns:
        The stylized image as PNG bytes.

    Raises:
        ServingError: the server failed or was unreachable.
        ValueError: bad arguments.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    server = server or DEFAULT_SERVERS.get(protocol)
    if mode == "bytes":
        inputs = [data]
    else:
        inputs = decode_image(data)[None]
    request = build_predict_request(inputs, protocol, model_name, version)
    if protocol == "rest":
        answer = rest_predict(
            rest_url(server, model_name, version), request, timeout
        )
    else:
        answer = grpc_predict(server, request, timeout)
    result = parse_predict_response(answer, protocol)
    if mode == "bytes":
        if len(result) != 1:
            raise ServingError(f"expected 1 image, got {len(result)}")
        return result[0]
    return encode_png(result[0])


def build_parser():
    """The CLI's argument parser (tests parse the READMEs' commands)."""
    parser = argparse.ArgumentParser(
        description="Stylize an image through TensorFlow Serving."
    )
    parser.add_argument("input", help="input image file")
    # Required, not defaulted: the client never writes a file the user did
    # not name (no silent overwrite next to the input).
    parser.add_argument("output", help="output PNG file")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="rest")
    parser.add_argument(
        "--server",
        default=None,
        help="host:port (default localhost:8501 for REST, "
        "localhost:8500 for gRPC)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--mode", choices=sorted(MODES), default="bytes")
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        with open(args.input, "rb") as f:
            data = f.read()
        png = stylize(
            data,
            args.server,
            args.protocol,
            args.model,
            args.version,
            args.mode,
            args.timeout,
        )
        with open(args.output, "wb") as f:
            f.write(png)
    except (OSError, ServingError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
