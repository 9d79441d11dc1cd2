"""`export/client.py` against stand-ins for TensorFlow Serving.

No TF Serving binary installs here (docs/environment.md#tf-serving), so two
small stand-ins serve the real exported SavedModel on 127.0.0.1:

- gRPC: a `PredictionService` whose `Predict` runs the requested signature;
- REST: `POST /v1/models/<name>[/versions/<v>]:predict` in TF Serving's
  JSON row format ("instances" -> "predictions", `{"b64": ...}` for string
  inputs and for string outputs whose name ends in "_bytes").

Both run the model through the TF1 session loader fed by SignatureDef
tensor names, which is how TF Serving runs SavedModels.
"""

import base64
import concurrent.futures
import http.server
import importlib.util
import io
import json
import pathlib
import re
import shlex
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from uegan_tf import export as uexport
from uegan_tf.models import build_generator
from uegan_tf.testing import synthetic_image

grpc = pytest.importorskip("grpc")
pytest.importorskip("tensorflow_serving")
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL = "uegan"


def _load_client():
    spec = importlib.util.spec_from_file_location(
        "uegan_serving_client", REPO / "export" / "client.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = _load_client()


# ---------------------------------------------------------------------------
# The stand-ins.
# ---------------------------------------------------------------------------


class _Models:
    """Versions of one model, run like TF Serving (session loader)."""

    def __init__(self, model_dir):
        self.versions = {
            v: uexport.SessionModel(pathlib.Path(model_dir) / str(v))
            for v in uexport.existing_versions(model_dir)
        }

    def get(self, name, version=None):
        if name != MODEL:
            raise KeyError(f"Servable not found for request: Latest({name})")
        version = version or max(self.versions)
        if version not in self.versions:
            raise KeyError(f"Servable not found: Specific({name}, {version})")
        return self.versions[version]

    def close(self):
        for model in self.versions.values():
            model.close()


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            model = self.models.get(
                spec.name,
                spec.version.value if spec.HasField("version") else None,
            )
        except KeyError as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        signature = spec.signature_name or "serving_default"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        try:
            outputs = model.run(signature, inputs)
        except Exception as e:  # bad signature or input: as TF Serving
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(spec)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def _json_value(name, value):
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_json_value(name, v) for v in value]
        return value.tolist()
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


_DTYPES = {
    tf.uint8.as_datatype_enum: np.uint8,
    tf.float32.as_datatype_enum: np.float32,
    tf.string.as_datatype_enum: object,
}


def _rest_predict(model, body):
    signature = body.get("signature_name", "serving_default")
    sig = model.signatures[signature]
    rows = body["instances"]
    names = list(sig.inputs)
    columns = {name: [] for name in names}
    for row in rows:
        if isinstance(row, dict) and set(row) != {"b64"}:
            for name in names:
                columns[name].append(_from_json(row[name]))
        elif len(names) == 1:
            columns[names[0]].append(_from_json(row))
        else:
            raise ValueError("unnamed instances need a single-input signature")
    inputs = {
        name: np.array(values, dtype=_DTYPES[sig.inputs[name].dtype])
        for name, values in columns.items()
    }
    outputs = model.run(signature, inputs)
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return [_json_value(name, v) for v in value]
    return [
        {name: _json_value(name, value[i]) for name, value in outputs.items()}
        for i in range(len(rows))
    ]


def _rest_handler(models):
    pattern = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, code, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            match = pattern.match(self.path)
            if not match:
                return self._send(404, {"error": f"bad path {self.path}"})
            try:
                model = models.get(
                    match.group(1),
                    int(match.group(2)) if match.group(2) else None,
                )
            except KeyError as e:
                return self._send(404, {"error": str(e.args[0])})
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                predictions = _rest_predict(model, body)
            except Exception as e:  # reported as TF Serving does
                return self._send(400, {"error": str(e)})
            return self._send(200, {"predictions": predictions})

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    keras.utils.set_random_seed(1)
    # Tiny width: the serving contract does not depend on the weights.
    generator = build_generator(unet=True, width=4)
    base = tmp_path_factory.mktemp("serving")
    saved = uexport.write_saved_model(
        generator, base, MODEL, fixed_size=(64, 64)
    )
    return {
        "dir": saved,
        "model_dir": saved.parent,
        "loaded": tf.saved_model.load(str(saved)),
    }


@pytest.fixture(scope="module")
def models(export):
    models = _Models(export["model_dir"])
    yield models
    models.close()


@pytest.fixture(scope="module")
def grpc_server(models):
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(2), options=client.GRPC_OPTIONS
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(models), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture(scope="module")
def rest_server(models):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), _rest_handler(models)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def photo():
    return synthetic_image(46, 62)  # gradients + noise, uint8


def _jpeg(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _expected(export, data):
    """What the model itself returns for encoded bytes (pixels)."""
    fn = export["loaded"].signatures["serve_bytes"]
    out = fn(image_bytes=tf.constant([data]))["png_bytes"].numpy()[0]
    return tf.io.decode_png(out).numpy()


# ---------------------------------------------------------------------------
# Pure functions.
# ---------------------------------------------------------------------------


def test_rest_request_bytes():
    body = client.build_predict_request([b"abc", b"\xff\x00"], "rest")
    assert body["signature_name"] == "serve_bytes"
    assert [
        base64.b64decode(i["image_bytes"]["b64"]) for i in body["instances"]
    ] == [b"abc", b"\xff\x00"]
    json.dumps(body)  # serialisable


def test_rest_request_tensor():
    images = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    body = client.build_predict_request(images, "rest")
    assert body["signature_name"] == "serving_default"
    np.testing.assert_array_equal(
        np.array([i["images"] for i in body["instances"]], np.uint8), images
    )


def test_grpc_request():
    request = client.build_predict_request([b"x"], "grpc", "m", version=7)
    assert request.model_spec.name == "m"
    assert request.model_spec.version.value == 7
    assert request.model_spec.signature_name == "serve_bytes"
    assert request.inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    images = np.zeros((1, 5, 6, 3), np.uint8)
    request = client.build_predict_request(images, "grpc")
    assert request.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(
        tf.make_ndarray(request.inputs["images"]), images
    )


def test_bad_inputs():
    with pytest.raises(ValueError):
        client.build_predict_request(np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(ValueError):
        client.build_predict_request(np.zeros((1, 5, 6, 3), np.float32))
    with pytest.raises(ValueError):
        client.build_predict_request(["not bytes"])
    with pytest.raises(ValueError):
        client.build_predict_request([b"x"], "soap")


def test_parse_responses():
    png = b"\x89PNG..."
    rest = {"predictions": [{"b64": base64.b64encode(png).decode()}]}
    assert client.parse_predict_response(rest, "rest") == [png]
    arr = client.parse_predict_response(
        {"predictions": [[[[1, 2, 3]]]]}, "rest"
    )
    assert arr.dtype == np.uint8 and arr.shape == (1, 1, 1, 3)
    with pytest.raises(client.ServingError, match="boom"):
        client.parse_predict_response({"error": "boom"}, "rest")
    response = predict_pb2.PredictResponse()
    response.outputs["png_bytes"].CopyFrom(
        tf.make_tensor_proto(np.array([png], dtype=object))
    )
    assert client.parse_predict_response(response, "grpc") == [png]
    with pytest.raises(client.ServingError):
        client.parse_predict_response(predict_pb2.PredictResponse(), "grpc")


def test_rest_url():
    assert client.rest_url("h:8501") == "http://h:8501/v1/models/uegan:predict"
    assert client.rest_url("https://h/", "m", 3) == (
        "https://h/v1/models/m/versions/3:predict"
    )


# ---------------------------------------------------------------------------
# Round trips through the stand-ins.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
@pytest.mark.parametrize("mode", ["bytes", "tensor"])
def test_round_trip(export, rest_server, grpc_server, photo, protocol, mode):
    server = rest_server if protocol == "rest" else grpc_server
    data = _jpeg(photo)
    png = client.stylize(data, server, protocol, MODEL, mode=mode)
    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert out.shape == photo.shape
    if mode == "bytes":
        np.testing.assert_array_equal(out, _expected(export, data))
    else:
        # The client decodes with Pillow, the model with TF: the JPEG
        # decoders may differ by a level, so compare with the signature on
        # the client's own pixels.
        pixels = client.decode_image(data)[None]
        direct = (
            export["loaded"]
            .signatures["serving_default"](images=tf.constant(pixels))[
                "stylized"
            ]
            .numpy()[0]
        )
        np.testing.assert_array_equal(out, direct)


def test_rest_batch_of_different_sizes(rest_server, export, photo):
    small = photo[:20, :30]
    request = client.build_predict_request([_jpeg(photo), _jpeg(small)])
    answer = client.rest_predict(client.rest_url(rest_server), request)
    pngs = client.parse_predict_response(answer)
    shapes = [tf.io.decode_png(p).numpy().shape for p in pngs]
    assert shapes == [(46, 62, 3), (20, 30, 3)]


def test_versioned_requests(rest_server, grpc_server, photo):
    data = _jpeg(photo)
    for protocol, server in (("rest", rest_server), ("grpc", grpc_server)):
        png = client.stylize(data, server, protocol, MODEL, version=1)
        assert png[:4] == b"\x89PNG"
        with pytest.raises(client.ServingError, match="not found|NOT_FOUND"):
            client.stylize(data, server, protocol, MODEL, version=9)


def test_unknown_model_and_unreachable_server(rest_server, grpc_server):
    with pytest.raises(client.ServingError, match="404"):
        client.stylize(b"x", rest_server, "rest", "other")
    with pytest.raises(client.ServingError, match="NOT_FOUND"):
        client.stylize(b"x", grpc_server, "grpc", "other")
    with pytest.raises(client.ServingError, match="cannot reach"):
        client.stylize(b"x", "127.0.0.1:9", "rest", timeout=5)


def test_warmup_requests_replay_over_grpc(export, grpc_server):
    logs = uexport.read_warmup_requests(export["dir"] / uexport.WARMUP_FILE)
    assert len(logs) == 2
    for log in logs:
        response = client.grpc_predict(grpc_server, log.predict_log.request)
        result = client.parse_predict_response(response, "grpc")
        if isinstance(result, list):
            assert tf.io.decode_png(result[0]).numpy().shape == (64, 64, 3)
        else:
            assert result.shape == (1, 64, 64, 3)


def test_cli(rest_server, photo, tmp_path):
    src = tmp_path / "photo.jpg"
    src.write_bytes(_jpeg(photo))
    dst = tmp_path / "anime.png"
    assert client.main([str(src), str(dst), f"--server={rest_server}"]) == 0
    assert Image.open(dst).size == (62, 46)
    assert client.main([str(tmp_path / "missing.jpg"), str(dst)]) == 2


def test_models_config_parses():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(
        (REPO / "export" / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig(),
    )
    (model,) = config.model_config_list.config
    assert model.name == MODEL
    assert model.base_path == f"/models/{MODEL}"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


def _readme_commands(readme, program):
    """The `python <program> ...` commands in `readme`'s code blocks.

    Backslash continuations are joined; `# comments` are dropped.
    """
    text = re.sub(r"\\\n\s*", " ", (REPO / readme).read_text())
    return [
        shlex.split(line, comments=True)
        for line in text.splitlines()
        if line.strip().startswith(f"python {program}")
    ]


@pytest.mark.parametrize("readme", ["README.md", "export/README.md"])
def test_readme_client_commands_parse(readme):
    """Each documented client command is accepted by the client's parser.

    README.md's example once left out the required output file (issue 14);
    argparse then exits, which fails this test.
    """
    commands = _readme_commands(readme, "export/client.py")
    assert commands, f"no client command found in {readme}"
    for command in commands:
        args = client.build_parser().parse_args(command[2:])
        assert args.input == "photo.jpg"
        assert args.output.endswith(".png")
