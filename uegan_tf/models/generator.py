"""AnimeGANv2 generator and its UE (U-Net) variant."""

import keras
import numpy as np
import tensorflow as tf

from uegan_tf.models.layers import REFERENCE_LN_EPSILON
from uegan_tf.models.layers import UPSAMPLE_MODES
from uegan_tf.models.layers import ConvNormLReLU
from uegan_tf.models.layers import InvertedResBlock
from uegan_tf.models.layers import he_normal
from uegan_tf.models.layers import resize_bilinear

# The network downsamples twice by 2 (bottom/right padded stride-2 convs) and
# upsamples twice by 2, so H and W must be multiples of 4 for the decoder to
# land back on the input size.
SIZE_MULTIPLE = 4

# The reference network's base width: its stages have c, 2c, 4c and 8c
# channels with c = 32 (A_0: 32, A/E: 64, B/C/D: 128, the inverted residual
# blocks: 256). The UE skips carry e0 (c channels, H) and e1 (2c, H/2).
REFERENCE_WIDTH = 32


@keras.saving.register_keras_serializable(package="uegan_tf")
class Generator(keras.Model):
    """AnimeGANv2 generator; with `unet=True` the UE-AnimeGANv2 generator.

    Plain (`unet=False`): exactly the official network
    (`TachibanaYoshino/AnimeGANv2:net/generator.py`), 2,143,552 parameters:
    blocks A, B (two bottom/right reflect-padded stride-2 downsamplings),
    C (conv, 4 inverted residual blocks with expansion 2 at H/4, conv),
    D and E (bilinear resize x2 then conv), 1x1 conv (no bias, no norm), tanh.

    UE (`unet=True`; `docs/design.md#ue-skip-connections`): the decoder stages
    also see the encoder features at the same resolution, by concatenation:
    `D1(concat[up(C), e1])` with e1 = block A's output (64 ch, H/2) and
    `E1(concat[up(D), e0])` with e0 = A's first conv output (32 ch, H).
    2,235,712 parameters. The kernel slices reading the skip channels start
    at zero, so a UE generator given a plain generator's weights computes
    the same function (see `copy_plain_weights`).

    `call(x, norm_stats=NormStats(...))` collects or reuses the layer-norm
    statistics (see `layers.NormStats`); tiled inference uses it.

    Contract: input `[B, H, W, 3]` float in [-1, 1], any H and W >= 4;
    output `[B, H, W, 3]` float32 in [-1, 1]. In the "tf1" and "half_pixel"
    upsample modes, sizes that are not multiples of 4 are reflect-padded
    on the bottom/right to the next multiple of 4 inside the model and the
    output is cropped back; the "align_corners" mode resizes to the stored
    encoder sizes and handles any size natively (as the PyTorch port).

    Args:
        unet: build the UE generator (U-Net concatenation skips).
        width: base channels c; the stages have c, 2c, 4c and 8c channels.
            32 is the reference network; smaller widths build the same
            graph with fewer weights (tests; `docs/design.md#width`).
        upsample: bilinear resize convention, "tf1" (the official graph and
            checkpoints), "align_corners" or "half_pixel" (the PyTorch
            port's two modes). See `layers.resize_bilinear`.
        norm_epsilon: layer-norm epsilon (1e-12 reference, 1e-5 PyTorch).
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(
        self,
        unet=True,
        upsample="tf1",
        norm_epsilon=REFERENCE_LN_EPSILON,
        width=REFERENCE_WIDTH,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(width) < 1:
            raise ValueError(f"width must be >= 1, got {width!r}")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(
                f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}"
            )
        self.unet = unet
        self.upsample = upsample
        self.norm_epsilon = norm_epsilon
        self.width = c = int(width)
        eps = norm_epsilon

        def cnl(filters, k=3, s=1, zero=0, name=None):
            return ConvNormLReLU(
                filters,
                k,
                s,
                norm_epsilon=eps,
                zero_input_channels=zero,
                name=name,
            )

        # Encoder.
        self.a0 = cnl(c, 7, name="A_0")
        self.a1 = cnl(2 * c, 3, 2, name="A_1")
        self.a2 = cnl(2 * c, name="A_2")
        self.b0 = cnl(4 * c, 3, 2, name="B_0")
        self.b1 = cnl(4 * c, name="B_1")
        # Bottleneck at H/4.
        self.c0 = cnl(4 * c, name="C_0")
        # Attributes, not a list: `tf.train.Checkpoint` does not follow
        # Python lists of Keras 3 layers, so listed layers would be missing
        # from generator-only checkpoints.
        self.c_r1 = InvertedResBlock(
            4 * c, 8 * c, 2, norm_epsilon=eps, name="C_r1"
        )
        self.c_r2 = InvertedResBlock(
            8 * c, 8 * c, 2, norm_epsilon=eps, name="C_r2"
        )
        self.c_r3 = InvertedResBlock(
            8 * c, 8 * c, 2, norm_epsilon=eps, name="C_r3"
        )
        self.c_r4 = InvertedResBlock(
            8 * c, 8 * c, 2, norm_epsilon=eps, name="C_r4"
        )
        self.c1 = cnl(4 * c, name="C_1")
        # Decoder. With UE skips the first conv of D and E reads the skip
        # channels last in its input (e1: 2c, e0: c); those kernel slices
        # start at zero.
        self.d0 = cnl(4 * c, zero=2 * c if unet else 0, name="D_0")
        self.d1 = cnl(4 * c, name="D_1")
        self.e0 = cnl(2 * c, zero=c if unet else 0, name="E_0")
        self.e1 = cnl(2 * c, name="E_1")
        self.e2 = cnl(c, 7, name="E_2")
        # Output in float32 even under a mixed-precision policy.
        self.out_conv = keras.layers.Conv2D(
            3,
            1,
            use_bias=False,
            kernel_initializer=he_normal(),
            dtype="float32",
            name="out_layer",
        )

    @property
    def irbs(self):
        """The four inverted residual blocks, in order."""
        return (self.c_r1, self.c_r2, self.c_r3, self.c_r4)

    def build(self, input_shape):
        # Build every sublayer by tracing a tiny forward pass, so that the
        # weights exist (e.g. before `load_weights` or a weight import).
        if not self.built:
            self.call(tf.zeros([1, 8, 8, input_shape[-1]], self.compute_dtype))

    def _pad_multiple(self):
        return 1 if self.upsample == "align_corners" else SIZE_MULTIPLE

    def call(self, x, training=None, norm_stats=None):
        m = self._pad_multiple()
        h, w = x.shape[1], x.shape[2]
        static_ok = (
            h is not None and w is not None and h % m == 0 and (w % m == 0)
        )
        if not static_ok:
            shape = tf.shape(x)
            h, w = shape[1], shape[2]
            # (m - h % m) % m, not (-h) % m: tf2onnx turns the latter into a
            # negative remainder.
            ph, pw = (m - h % m) % m, (m - w % m) % m
            x = tf.pad(x, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="REFLECT")
            # Restate the channel count: after a dynamic pad the TFLite
            # converter loses it and cannot lower the first convolution.
            x = tf.reshape(x, tf.stack([shape[0], h + ph, w + pw, x.shape[-1]]))

        def f(layer, t):  # every norm-carrying block takes norm_stats
            return layer(t, norm_stats=norm_stats)

        # Shapes for the reference width c = 32.
        e0 = f(self.a0, x)  # [B, H, W, 32]
        e1 = f(self.a2, f(self.a1, e0))  # [B, H/2, W/2, 64]
        y = f(self.b1, f(self.b0, e1))  # [B, H/4, W/4, 128]
        y = f(self.c0, y)
        for irb in self.irbs:
            y = f(irb, y)  # [B, H/4, W/4, 256]
        y = f(self.c1, y)  # [B, H/4, W/4, 128]

        # Resize to the encoder tap's size: exactly x2 once H, W are
        # multiples of 4, and the PyTorch port's stored sizes otherwise.
        y = resize_bilinear(y, tf.shape(e1)[1:3], self.upsample)
        if self.unet:
            y = tf.concat([y, tf.cast(e1, y.dtype)], axis=-1)  # 128 + 64
        y = f(self.d1, f(self.d0, y))  # [B, H/2, W/2, 128]

        y = resize_bilinear(y, tf.shape(e0)[1:3], self.upsample)
        if self.unet:
            y = tf.concat([y, tf.cast(e0, y.dtype)], axis=-1)  # 128 + 32
        y = f(self.e2, f(self.e1, f(self.e0, y)))  # [B, H, W, 32]

        y = tf.tanh(self.out_conv(y))  # [B, H, W, 3], float32
        if not static_ok:
            y = y[:, :h, :w, :]
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            unet=self.unet,
            upsample=self.upsample,
            norm_epsilon=self.norm_epsilon,
            width=self.width,
        )
        return config


def build_generator(
    unet=True,
    upsample="tf1",
    norm_epsilon=REFERENCE_LN_EPSILON,
    name=None,
    width=REFERENCE_WIDTH,
):
    """Create a generator and its weights (a traced 8x8 forward pass)."""
    generator = Generator(
        unet=unet,
        upsample=upsample,
        norm_epsilon=norm_epsilon,
        width=width,
        name=name or ("ue_generator" if unet else "generator"),
    )
    generator(tf.zeros([1, 8, 8, 3]))
    return generator


def generator_sublayers(generator):
    """Named `ConvNormLReLU` / `InvertedResBlock` / out conv sublayers.

    The order and names follow the official scopes; used by weight copy and
    import code.
    """
    g = generator
    layers = [
        ("A_0", g.a0),
        ("A_1", g.a1),
        ("A_2", g.a2),
        ("B_0", g.b0),
        ("B_1", g.b1),
        ("C_0", g.c0),
    ]
    layers += [(f"C_r{i + 1}", irb) for i, irb in enumerate(g.irbs)]
    layers += [
        ("C_1", g.c1),
        ("D_0", g.d0),
        ("D_1", g.d1),
        ("E_0", g.e0),
        ("E_1", g.e1),
        ("E_2", g.e2),
        ("out_layer", g.out_conv),
    ]
    return layers


def zero_fill_skip_channels(value, shape, name):
    """`value` fitted to a variable of `shape`, zero-filling skip channels.

    A UE generator's first convs of D and E have more input channels than
    the plain network's (the skips, read last): a plain kernel fills the
    leading input channels and the skip slice is zero, so the UE generator
    computes the same function (function-preserving initialisation). Used
    by `copy_plain_weights` and by the weight importers.

    Args:
        value: the source array.
        shape: the target variable's shape.
        name: names the weight in the error.

    Returns:
        float32 numpy array of `shape` (`value` itself when it fits).

    Raises:
        ValueError: shapes that differ other than in kernel input channels.
    """
    value = np.asarray(value, dtype=np.float32)
    shape = tuple(shape)
    if value.shape == shape:
        return value
    ok = (
        value.ndim == 4
        and len(shape) == 4
        and value.shape[:2] == shape[:2]
        and value.shape[3] == shape[3]
        and value.shape[2] < shape[2]
    )
    if not ok:
        raise ValueError(
            f"{name}: source shape {value.shape} does not fit {shape}"
        )
    pad = np.zeros(
        (*shape[:2], shape[2] - value.shape[2], shape[3]), np.float32
    )
    return np.concatenate([value, pad], axis=2)


def copy_plain_weights(source, target):
    """Copy a generator's weights into another, plain or UE.

    Shapes that match are copied. Where the target is a UE generator and the
    source a plain one, the first convs of D and E have extra input channels
    (the skips): the source kernel fills the leading channels and the skip
    slices are set to zero, so the target computes the same function as the
    source. Copying from UE to plain is refused (it would drop the skips).

    Args:
        source: a built `Generator`.
        target: a built `Generator`.

    Raises:
        ValueError: on a UE -> plain copy or mismatching shapes.
    """
    if source.unet and not target.unet:
        raise ValueError("cannot copy UE weights into a plain generator")
    for (_, src), (name, dst) in zip(
        generator_sublayers(source), generator_sublayers(target)
    ):
        for sw, dw in zip(src.weights, dst.weights):
            dw.assign(zero_fill_skip_channels(sw.numpy(), dw.shape, name))
