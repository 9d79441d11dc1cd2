"""TF Serving: warm-up requests and `SessionModel`, a stand-in for its loader.

The warm-up file (`<version>/assets.extra/tf_serving_warmup_requests`) holds
PredictionLogs that TF Serving replays when it loads a version.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

from uegan_tf.export.options import ExportError
from uegan_tf.export.signatures import BYTES_INPUT
from uegan_tf.export.signatures import BYTES_SIGNATURE
from uegan_tf.export.signatures import IMAGES_INPUT
from uegan_tf.export.signatures import SERVING_DEFAULT

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_requests(model_name, image):
    """PredictionLogs warming up both image signatures with `image`.

    TF Serving replays them when it loads a version, so that the first
    real request does not pay for graph initialisation.

    Args:
        model_name: the served model name.
        image: uint8 `[H, W, 3]`.

    Returns:
        A list of `tensorflow_serving.apis.prediction_log_pb2.PredictionLog`.

    Raises:
        ExportError: `tensorflow-serving-api` is not installed.
    """
    try:
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError:
        raise ExportError(
            "warmup requests need tensorflow-serving-api (pip install "
            "tensorflow-serving-api), or export without them (--nowarmup)"
        ) from None
    image = np.asarray(image, dtype=np.uint8)
    png = tf.io.encode_png(image).numpy()
    logs = []
    for signature, key, value in (
        (SERVING_DEFAULT, IMAGES_INPUT, image[None]),
        (BYTES_SIGNATURE, BYTES_INPUT, np.array([png], dtype=object)),
    ):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup_requests(path, logs):
    """Write PredictionLogs as TF Serving's warmup TFRecord file."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup_requests(path):
    """Parse a warmup file back into `PredictionLog`s."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


class SessionModel:
    """A SavedModel run through the TF1 session loader, as TF Serving does.

    TF Serving loads SavedModels with the session-based C++ loader and feeds
    the tensors named in each SignatureDef; `tf.saved_model.load` (TF2) is a
    different code path. A model that this class can run is one that the
    server's loader can restore (the `tf.Module` failure mode in
    `docs/environment.md#savedmodel-export` fails here too).

    Args:
        saved_model_dir: a SavedModel folder.
        tags: MetaGraph tags.
    """

    def __init__(self, saved_model_dir, tags=("serve",)):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(
                self.session, list(tags), str(saved_model_dir)
            )
        self.signatures = {
            k: v
            for k, v in meta.signature_def.items()
            if not k.startswith("__")
        }

    def run(self, signature_name, inputs):
        """Run a signature on numpy inputs.

        Args:
            signature_name: a SignatureDef key.
            inputs: dict input name -> numpy value.

        Returns:
            dict output name -> numpy value.

        Raises:
            KeyError: unknown signature or input name.
        """
        sig = self.signatures[signature_name]
        feeds = {sig.inputs[k].name: v for k, v in inputs.items()}
        names = sorted(sig.outputs)
        values = self.session.run(
            [sig.outputs[n].name for n in names], feed_dict=feeds
        )
        return dict(zip(names, values))

    def close(self):
        self.session.close()
