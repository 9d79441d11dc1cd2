"""Frozen VGG feature extractor for the perceptual (content / style) losses."""

import os

import keras
import numpy as np
import tensorflow as tf

# Conv widths per VGG block, up to block 4 (the losses never go further).
_BLOCKS = {
    "vgg19": ((64, 2), (128, 2), (256, 4), (512, 4)),
    "vgg16": ((64, 2), (128, 2), (256, 3), (512, 3)),
}

# Caffe preprocessing of the reference `tools/vgg19.py`: [0, 255] BGR minus
# the ImageNet BGR means. Keras' ImageNet VGG19 weights use the same.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision preprocessing, which the offline VGG16 weights expect.
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="uegan_tf")
class VGGFeatures(keras.Model):
    """VGG features up to block 4's last conv, **before** its ReLU.

    `arch="vgg19"`: the reference perceptual network, `conv4_4` pre-ReLU
    ("conv4_4_no_activation"), caffe preprocessing (RGB [-1, 1] -> [0, 255]
    -> BGR - mean). `arch="vgg16"`: `conv4_3` pre-ReLU with torchvision
    preprocessing (RGB [0, 1], (x - mean) / std), for the offline ImageNet
    VGG16 weights in `shared/weights/vgg16_imagenet_features.npz`.

    The network is frozen (`trainable=False`); gradients still flow to the
    input, which is what the content and style losses need.

    Contract: input `[B, H, W, 3]` RGB in [-1, 1]; output
    `[B, H/8, W/8, 512]` float32.

    Args:
        arch: "vgg19" or "vgg16".
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(self, arch="vgg19", **kwargs):
        super().__init__(**kwargs)
        if arch not in _BLOCKS:
            raise ValueError(f"arch must be vgg19 or vgg16, got {arch!r}")
        self.arch = arch
        self.convs = []
        for b, (filters, n) in enumerate(_BLOCKS[arch], start=1):
            for i in range(1, n + 1):
                self.convs.append(
                    keras.layers.Conv2D(
                        filters, 3, padding="same", name=f"block{b}_conv{i}"
                    )
                )
        self.trainable = False

    def build(self, input_shape):
        if not self.built:
            self.call(tf.zeros([1, 16, 16, 3]))

    def preprocess(self, x):
        """RGB in [-1, 1] -> the network's expected input."""
        x = tf.cast(x, tf.float32)
        if self.arch == "vgg19":
            x = (x + 1.0) * 127.5
            return x[..., ::-1] - tf.constant(CAFFE_BGR_MEAN)
        x = (x + 1.0) * 0.5
        return (x - tf.constant(TORCH_MEAN)) / tf.constant(TORCH_STD)

    def call(self, x):
        x = self.preprocess(x)
        blocks = _BLOCKS[self.arch]
        k = 0
        for b, (_, n) in enumerate(blocks):
            for i in range(n):
                x = self.convs[k](x)
                k += 1
                last = b == len(blocks) - 1 and i == n - 1
                if not last:
                    x = tf.nn.relu(x)
            if b < len(blocks) - 1:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        return x  # pre-ReLU block-4 features

    def block_activations(self, x, blocks=4):
        """Post-ReLU outputs of each block's last conv (the style taps).

        For "vgg16": relu1_2, relu2_2, relu3_3, relu4_3; for "vgg19":
        relu1_2, relu2_2, relu3_4, relu4_4. Input as `call`; outputs
        `[B, H, W, 64]`, `[B, H/2, W/2, 128]`, `[B, H/4, W/4, 256]`,
        `[B, H/8, W/8, 512]` (floor division: VALID 2x2 max pools), the
        first `blocks` of them (later blocks are not computed).
        """
        x = self.preprocess(x)
        taps, k = [], 0
        for b, (_, n) in enumerate(_BLOCKS[self.arch][:blocks]):
            if b:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for _ in range(n):
                x = tf.nn.relu(self.convs[k](x))
                k += 1
            taps.append(x)
        return taps

    def get_config(self):
        config = super().get_config()
        config.update(arch=self.arch)
        return config


def build_vgg_features(arch="vgg19", weights=None):
    """Build a frozen `VGGFeatures` and load its weights.

    Args:
        arch: "vgg19" (the reference) or "vgg16" (offline weights).
        weights: for "vgg19": `None` (random, for tests), `"imagenet"`
            (Keras downloads its ImageNet VGG19 once into `~/.keras/models`;
            needs internet) or a path to a Keras VGG19 `.h5` weights file
            (`include_top=False` or full). For "vgg16": `None` or a path to
            an `.npz` with keys `conv1_1/kernel`, `conv1_1/bias`, ...
            (HWIO kernels), such as `vgg16_imagenet_features.npz`.

    Returns:
        The built, frozen feature extractor.

    Raises:
        FileNotFoundError: a weights path that does not exist.
        ValueError: an unsupported combination of arch and weights, or
            VGG19 weights that cannot be downloaded or read (one line).
    """
    model = VGGFeatures(arch, name=f"{arch}_features")
    model(tf.zeros([1, 16, 16, 3]))
    if weights is None:
        return model
    if weights != "imagenet" and not os.path.exists(weights):
        raise FileNotFoundError(f"VGG weights not found: {weights}")
    if arch == "vgg19":
        if str(weights).endswith(".npz"):
            raise ValueError(
                "an .npz file is the offline VGG16 format; use arch='vgg16'"
            )
        # Keras' own loader handles both the download and local .h5 files.
        try:
            source = keras.applications.VGG19(
                include_top=False, weights=weights, input_shape=(None, None, 3)
            )
        except Exception as e:  # noqa: BLE001 - Keras raises bare Exception
            raise ValueError(_vgg19_error(weights, e)) from None
        for conv in model.convs:
            conv.set_weights(source.get_layer(conv.name).get_weights())
    else:
        if weights == "imagenet":
            raise ValueError(
                "vgg16 features load from a local .npz "
                "(shared/weights/vgg16_imagenet_features.npz), not 'imagenet'"
            )
        data = np.load(weights)
        names = [
            f"conv{b}_{i}"
            for b, (_, n) in enumerate(_BLOCKS["vgg16"], start=1)
            for i in range(1, n + 1)
        ]
        for conv, name in zip(model.convs, names):
            conv.set_weights([data[f"{name}/kernel"], data[f"{name}/bias"]])
    return model


def _vgg19_error(weights, error):
    """One line for a VGG19 download or load that failed, with the
    offline way out (Keras prints a URL and an errno, then a traceback)."""
    from uegan_tf.errors import first_line

    reason = first_line(error)
    if weights == "imagenet":
        return (
            "cannot download Keras' ImageNet VGG19 weights into "
            f"~/.keras/models ({reason}); offline, pass a local VGG19 .h5 "
            "(--vgg_weights=PATH) or use --vgg_arch=vgg16 "
            "--vgg_weights=PATH/vgg16_imagenet_features.npz"
        )
    return f"cannot read VGG19 weights {weights} ({reason})"
