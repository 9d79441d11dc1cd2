"""Keras layers of the AnimeGANv2 / UE-AnimeGANv2 networks.

All layers take and return NHWC tensors and work with unknown height and
width (they are traced with `[None, None, None, C]` signatures for export).
Padding is explicit (reflect in the generator, zero in the discriminator) and
every convolution runs with `VALID` padding afterwards, as in the official
TF1 code (`TachibanaYoshino/AnimeGANv2:net/generator.py`, `tools/ops.py`).
"""

import keras
import tensorflow as tf

from uegan_tf.config import UPSAMPLE_MODES

# Layer norm of the reference: `tf.contrib.layers.layer_norm` normalises over
# (H, W, C) per sample with a per-channel affine and a hard-coded variance
# epsilon of 1e-12 (Keras' default 1e-3 changes low-variance maps).
REFERENCE_LN_EPSILON = 1e-12


def he_normal():
    """TF1 `variance_scaling_initializer()` (fan-in, factor 2, truncated)."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="truncated_normal"
    )


def same_padding(kernel_size, strides):
    """Reference padding `((top, bottom), (left, right))` for a conv.

    Stride 1 pads `k // 2` on every side; stride 2 pads only bottom and right
    by one (`(0, 1)`), so that 256 -> 128 -> 64 exactly.
    """
    if strides == 2:
        return ((0, 1), (0, 1))
    p = kernel_size // 2
    return ((p, p), (p, p))


def reflect_pad(x, padding):
    """`tf.pad(x, ..., mode="REFLECT")` on H and W, written as slices.

    Bit-identical to the REFLECT pad (the border row/column is not
    repeated), but built from single-row/column slices and concats: TFLite
    lowers `tf.pad(REFLECT)` to MIRROR_PAD, which XNNPACK does not delegate,
    so every padded conv of the generator fell back to the slow reference
    kernel and split the delegated graph (`docs/design.md#reflect-padding`).
    SLICE and CONCATENATION are delegated, but XNNPACK takes a
    CONCATENATION of at most 5 inputs (LiteRT 2.3): a 7x7 conv's pad of 3
    as one concat of 3 + 1 + 3 pieces stayed on the reference kernel and
    split the graph into 5 partitions, so the mirrored rows are first
    joined into one piece and every concat has at most 3 inputs
    (`docs/environment.md#tflite-and-litert`). Works with unknown H and
    W; each pad must be smaller than the padded dimension, as for `tf.pad`.

    Args:
        x: `[B, H, W, C]`.
        padding: `((top, bottom), (left, right))`, small static ints.

    Returns:
        `[B, H + top + bottom, W + left + right, C]`.
    """
    (top, bottom), (left, right) = padding

    def along(t, before, after, axis):
        if not (before or after):
            return t

        def part(i):  # the slice [i, i + 1) along `axis`; i < 0 from the end
            index = [slice(None)] * 4
            index[axis] = slice(i, i + 1 if i != -1 else None)
            return t[tuple(index)]

        def joined(rows):  # a few thin slices -> one `[.., n, ..]` piece
            return rows[0] if len(rows) == 1 else tf.concat(rows, axis=axis)

        # before: rows before..1 (mirror of rows 1..before, border excluded);
        # after: rows n-2 .. n-1-after.
        pieces = []
        if before:
            pieces.append(joined([part(i) for i in range(before, 0, -1)]))
        pieces.append(t)
        if after:
            pieces.append(joined([part(-1 - i) for i in range(1, after + 1)]))
        return tf.concat(pieces, axis=axis)

    return along(along(x, top, bottom, 1), left, right, 2)


@keras.saving.register_keras_serializable(package="uegan_tf")
class LayerNorm(keras.layers.GroupNormalization):
    """The reference layer norm: `GroupNormalization(groups=1)`.

    Normalises each sample over (H, W, C) and applies a per-channel affine
    (gamma, beta), as TF1's `tf.contrib.layers.layer_norm` (and PyTorch's
    `GroupNorm(1, C)`). Default epsilon 1e-12 (the reference's).

    It adds one thing to Keras' layer: `call(x, stats=(mean, variance))`
    normalises with given statistics instead of the input's own. Tiled
    inference uses it so that every tile of a large image is normalised with
    the same (whole-image) statistics, which keeps tiles consistent.

    `call(x, leaky_alpha=a)` also applies LeakyReLU(a) to the normalised
    float32 map before it is cast back to the compute dtype. In float32 this
    is the same two ops in the same order; under `mixed_bfloat16` it keeps
    the activation in float32 with one cast at the end (the bfloat16
    LeakyReLU of TF's CPU kernels costs more than the float32 one, and it
    rounds the input to bfloat16 once more, `docs/environment.md#bfloat16-
    inference`).

    Input and output `[B, H, W, C]`; statistics `[B or 1, 1, 1, 1]`.

    Args:
        epsilon: variance epsilon.
        **kwargs: `keras.layers.GroupNormalization` arguments (groups is
            always 1).
    """

    def __init__(self, epsilon=REFERENCE_LN_EPSILON, **kwargs):
        kwargs.pop("groups", None)
        super().__init__(groups=1, epsilon=epsilon, **kwargs)

    def moments(self, x):
        """Per-sample mean and variance over (H, W, C), float32."""
        return tf.nn.moments(
            tf.cast(x, tf.float32), axes=[1, 2, 3], keepdims=True
        )

    def call(self, inputs, stats=None, leaky_alpha=None):
        # Keras' GroupNormalization reshapes `[B, H, W, C]` to
        # `[B, H, W, 1, C]` and back around the same arithmetic. With one
        # group that reshape is a no-op in TF (bit-identical outputs,
        # tests/test_layers.py), but TFLite keeps both RESHAPEs and XNNPACK
        # runs each as a full copy of the activation: 2 of the ~9 full-map
        # memory passes of every norm (`docs/environment.md#tflite-and-
        # litert`). So the same ops are written on the 4-D tensor.
        x = tf.cast(inputs, tf.float32)
        if stats is None:
            mean, variance = self.moments(x)  # each [B, 1, 1, 1]
        else:
            mean, variance = stats  # [B or 1, 1, 1, 1]
        inv = tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * tf.cast(self.gamma, tf.float32)  # [B, 1, 1, C]
        # Keras adds `-mean * inv + beta`; subtracting `mean * inv - beta`
        # is bit-identical (IEEE negation is exact). A SUB, not an ADD:
        # with static shapes Grappler's arithmetic optimizer merges a
        # final ADD with an inverted residual block's residual ADD into one
        # reassociated sum, whose rounding differs from eager and from the
        # dynamic-shape SavedModel signature (tests/test_layers.py).
        shift = mean * inv
        if self.center:
            shift = shift - tf.cast(self.beta, tf.float32)
        y = x * inv - shift  # one per-channel scale and shift: MUL, SUB
        if leaky_alpha is not None:
            y = tf.nn.leaky_relu(y, alpha=leaky_alpha)
        return tf.cast(tf.cast(y, inputs.dtype), self.compute_dtype)


class NormStats:
    """Collects or supplies layer-norm statistics during a forward pass.

    `NormStats()` records each `LayerNorm`'s (mean, variance) in call order;
    `NormStats(values)` makes each `LayerNorm` use the next recorded pair.
    Pass it as `norm_stats=` to `Generator.call`.
    """

    def __init__(self, values=None):
        self.collect = values is None
        self.values = [] if values is None else list(values)
        self._next = 0

    def normalize(self, norm_layer, x, **kwargs):
        """`norm_layer(x, **kwargs)` with recorded or recording stats."""
        if self.collect:
            stats = norm_layer.moments(x)
            self.values.append(stats)
            return norm_layer(x, stats=stats, **kwargs)
        stats = self.values[self._next]
        self._next += 1
        return norm_layer(x, stats=stats, **kwargs)


@keras.saving.register_keras_serializable(package="uegan_tf")
class ConvNormLReLU(keras.layers.Layer):
    """Reflect pad -> conv (no bias) -> layer norm -> LeakyReLU(0.2).

    The generator's basic block (`Conv2DNormLReLU` in the reference). With
    `depthwise=True` the convolution is a 3x3 depthwise conv **with** bias
    (the only convolutions with a bias in the reference generator). With
    `activation=False` the LeakyReLU is skipped (IRB linear bottleneck).

    Input `[B, H, W, C_in]`, output `[B, H', W', filters]` with
    `H' = H` for stride 1 and `H' = ceil(H / 2)` for stride 2.

    Args:
        filters: output channels (ignored for depthwise, which keeps C_in).
        kernel_size: 1, 3 or 7.
        strides: 1 or 2.
        depthwise: use a depthwise convolution with bias.
        activation: apply LeakyReLU(0.2) after the norm.
        norm_epsilon: layer-norm variance epsilon (1e-12 in the reference,
            1e-5 for weights from the PyTorch port).
        zero_input_channels: zero-initialise the kernel slice that reads the
            last `n` input channels. The UE generator uses it for the U-Net
            skip channels so that at initialisation it computes the same
            function as the plain AnimeGANv2 generator.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        depthwise=False,
        activation=True,
        norm_epsilon=REFERENCE_LN_EPSILON,
        zero_input_channels=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.depthwise = depthwise
        self.activation = activation
        self.norm_epsilon = norm_epsilon
        self.zero_input_channels = zero_input_channels
        self.padding = same_padding(kernel_size, strides)
        if depthwise:
            self.conv = keras.layers.DepthwiseConv2D(
                kernel_size,
                strides=strides,
                padding="valid",
                use_bias=True,
                depthwise_initializer=he_normal(),
                name="depthwise",
            )
        else:
            self.conv = keras.layers.Conv2D(
                filters,
                kernel_size,
                strides=strides,
                padding="valid",
                use_bias=False,
                kernel_initializer=he_normal(),
                name="conv",
            )
        self.norm = LayerNorm(epsilon=norm_epsilon, name="norm")

    def build(self, input_shape):
        channels = input_shape[-1]
        (top, bottom), (left, right) = self.padding
        h = None if input_shape[1] is None else input_shape[1] + top + bottom
        w = None if input_shape[2] is None else input_shape[2] + left + right
        self.conv.build((input_shape[0], h, w, channels))
        out_channels = channels if self.depthwise else self.filters
        self.norm.build((input_shape[0], None, None, out_channels))
        if self.zero_input_channels:
            kernel = self.conv.kernel
            n = self.zero_input_channels
            mask = tf.concat([tf.ones([channels - n]), tf.zeros([n])], axis=0)[
                None, None, :, None
            ]
            kernel.assign(kernel * mask)

    def call(self, x, norm_stats=None):
        (top, bottom), (left, right) = self.padding
        if top or bottom or left or right:
            x = reflect_pad(x, self.padding)
        x = self.conv(x)
        # LeakyReLU(0.2) inside the norm, on its float32 result.
        alpha = 0.2 if self.activation else None
        if norm_stats is None:
            return self.norm(x, leaky_alpha=alpha)
        return norm_stats.normalize(self.norm, x, leaky_alpha=alpha)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1] if self.depthwise else self.filters

        def out(n):
            if n is None:
                return None
            return n if self.strides == 1 else (n - 1) // 2 + 1

        return (
            input_shape[0],
            out(input_shape[1]),
            out(input_shape[2]),
            channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            depthwise=self.depthwise,
            activation=self.activation,
            norm_epsilon=self.norm_epsilon,
            zero_input_channels=self.zero_input_channels,
        )
        return config


@keras.saving.register_keras_serializable(package="uegan_tf")
class InvertedResBlock(keras.layers.Layer):
    """MobileNetV2 inverted residual block of AnimeGANv2 (stride 1).

    1x1 conv to `round(expansion * in_channels)` + LN + LReLU, 3x3 depthwise
    conv (+bias) + LN + LReLU, 1x1 conv to `out_channels` + LN (linear
    bottleneck), plus the input when `in_channels == out_channels`.

    Input `[B, H, W, in_channels]`, output `[B, H, W, out_channels]`.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        expansion: bottleneck expansion ratio (2 in AnimeGANv2).
        norm_epsilon: layer-norm epsilon.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        expansion=2,
        norm_epsilon=REFERENCE_LN_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.expansion = expansion
        self.norm_epsilon = norm_epsilon
        bottleneck = int(round(expansion * in_channels))
        self.expand = ConvNormLReLU(
            bottleneck, 1, norm_epsilon=norm_epsilon, name="expand"
        )
        self.depthwise = ConvNormLReLU(
            bottleneck,
            3,
            depthwise=True,
            norm_epsilon=norm_epsilon,
            name="depthwise",
        )
        self.project = ConvNormLReLU(
            out_channels,
            1,
            activation=False,
            norm_epsilon=norm_epsilon,
            name="project",
        )

    def build(self, input_shape):
        bottleneck = int(round(self.expansion * self.in_channels))
        self.expand.build(input_shape)
        inner = (input_shape[0], input_shape[1], input_shape[2], bottleneck)
        self.depthwise.build(inner)
        self.project.build(inner)

    def call(self, x, norm_stats=None):
        y = self.expand(x, norm_stats=norm_stats)
        y = self.depthwise(y, norm_stats=norm_stats)
        y = self.project(y, norm_stats=norm_stats)
        if self.in_channels == self.out_channels:
            y = x + y
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            expansion=self.expansion,
            norm_epsilon=self.norm_epsilon,
        )
        return config


def resize_bilinear(x, size, mode="tf1"):
    """Bilinear resize of `x` `[B, h, w, C]` to `size` `(H, W)` (a tensor).

    Modes:
        "tf1": TF1's `tf.image.resize_images` (legacy: `align_corners=False`,
            `half_pixel_centers=False`), which the official AnimeGANv2 graph
            and its checkpoints use;
        "align_corners": PyTorch `F.interpolate(..., align_corners=True)`, the
            default of the `bryandlee/animegan2-pytorch` `forward`;
        "half_pixel": TF2 `tf.image.resize` and PyTorch
            `align_corners=False` with `scale_factor=2`.
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(
            f"upsample mode must be one of {UPSAMPLE_MODES}, got {mode!r}"
        )
    dtype = x.dtype
    y = tf.raw_ops.ResizeBilinear(
        images=x,
        size=size,
        align_corners=(mode == "align_corners"),
        half_pixel_centers=(mode == "half_pixel"),
    )
    return tf.cast(y, dtype)


@keras.saving.register_keras_serializable(package="uegan_tf")
class SpectralConv2D(keras.layers.Layer):
    """Zero-padded 3x3 convolution with optional spectral normalisation.

    The discriminator's conv (`tools/ops.py: conv` with `sn=True`): no bias,
    weights ~ N(0, 0.02), zero padding 1 on every side for stride 1 and on top
    and left only for stride 2. Spectral norm follows the reference exactly:
    the kernel variable keeps W, the forward pass uses W / sigma(W) with sigma
    from one power iteration on a persistent, non-trainable `u`, gradients
    flow through sigma (u and v are constants), and `u` is updated only when
    `training=True`.

    Keras' `keras.layers.SpectralNormalization` is not used: it overwrites
    the kernel variable with W / sigma in place at every training call,
    which is a different optimisation problem from the reference.

    Input `[B, H, W, C_in]`, output `[B, H', W', filters]`.

    Args:
        filters: output channels.
        kernel_size: kernel size (3 in the reference discriminator).
        strides: 1 or 2.
        spectral_norm: apply spectral normalisation.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self, filters, kernel_size=3, strides=1, spectral_norm=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.spectral_norm = spectral_norm

    def build(self, input_shape):
        k = self.kernel_size
        # autocast=False: under mixed_float16 a read inside `call` would
        # otherwise give the float16 copy, and the power iteration would
        # run in float16 against the float32 `u` (issue 14). `call` casts
        # the normalised kernel to the compute dtype itself.
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, input_shape[-1], self.filters),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            autocast=False,
        )
        if self.spectral_norm:
            # Identical on every replica (same W, same u), so the mean
            # aggregation of a replica-context assign is exact.
            self.u = self.add_weight(
                name="u",
                shape=(1, self.filters),
                initializer=keras.initializers.RandomNormal(stddev=1.0),
                trainable=False,
                aggregation="mean",
                autocast=False,
            )

    def _padding(self):
        """(before, after) zero padding, the same on H and W.

        The reference pads `p = 1`; for stride 2 (kernel - stride odd) it
        puts `p` before and `kernel - stride - p` after: (1, 0) for 3x3.
        """
        if self.strides == 1:
            p = self.kernel_size // 2
            return p, p
        return 1, max(self.kernel_size - self.strides - 1, 0)

    def sigma(self, training=False):
        """sigma(W), float32 `[1, 1]`; when training, also updates u.

        One power iteration, always in float32 whatever the dtype policy:
        in float16, u and sigma would carry ~1e-3 relative errors.
        """
        w = tf.cast(self.kernel, tf.float32)
        w = tf.reshape(w, [-1, self.filters])  # [k*k*C_in, F]
        u = tf.cast(self.u, tf.float32)  # [1, F]
        v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))
        u = tf.math.l2_normalize(tf.matmul(v, w))
        u = tf.stop_gradient(u)
        v = tf.stop_gradient(v)
        sigma = tf.matmul(tf.matmul(v, w), u, transpose_b=True)  # [1, 1]
        if training:
            self.u.assign(u)
        return sigma

    def normalized_kernel(self, training=False):
        """W / sigma(W) in the compute dtype (divided in float32)."""
        kernel = tf.cast(self.kernel, tf.float32)
        if self.spectral_norm:
            kernel = kernel / self.sigma(training)
        return tf.cast(kernel, self.compute_dtype)

    def call(self, x, training=False):
        kernel = tf.cast(self.normalized_kernel(training), x.dtype)
        before, after = self._padding()
        x = tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]])
        return tf.nn.conv2d(x, kernel, self.strides, "VALID")

    def compute_output_shape(self, input_shape):
        before, after = self._padding()

        def out(n):
            if n is None:
                return None
            return (n + before + after - self.kernel_size) // self.strides + 1

        return (
            input_shape[0],
            out(input_shape[1]),
            out(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            spectral_norm=self.spectral_norm,
        )
        return config
