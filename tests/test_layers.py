"""Layer helpers of `uegan_tf.models.layers`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from uegan_tf.models import build_generator
from uegan_tf.models.layers import InvertedResBlock
from uegan_tf.models.layers import LayerNorm
from uegan_tf.models.layers import reflect_pad


def test_reflect_pad_by_hand():
    # A ramp 0..4 along W: reflect (border not repeated) by 2 and 1.
    x = tf.reshape(tf.range(5, dtype=tf.float32), [1, 1, 5, 1])
    y = reflect_pad(x, ((0, 0), (2, 1)))
    np.testing.assert_array_equal(y.numpy().ravel(), [2, 1, 0, 1, 2, 3, 4, 3])


@pytest.mark.parametrize(
    "padding",
    [((3, 3), (3, 3)), ((1, 1), (1, 1)), ((0, 1), (0, 1)), ((2, 0), (0, 3))],
)
def test_reflect_pad_equals_tf_pad(padding):
    x = tf.random.normal([2, 9, 7, 3], seed=1)
    want = tf.pad(x, [[0, 0], *padding, [0, 0]], mode="REFLECT")
    np.testing.assert_array_equal(reflect_pad(x, padding), want)
    # Traced with unknown H and W (the export signatures).
    fn = tf.function(
        lambda t: reflect_pad(t, padding),
        input_signature=[tf.TensorSpec([None, None, None, 3])],
    )
    np.testing.assert_array_equal(fn(x), want)


def test_tflite_generator_has_no_mirror_pad():
    """XNNPACK does not delegate MIRROR_PAD: the generator's convs must
    not produce it (the 3x3 / 7x7 reflect pads are slices + concat)."""
    g = build_generator(unet=True, width=2)
    fn = tf.function(
        lambda x: g(x), input_signature=[tf.TensorSpec([1, 32, 32, 3])]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], g
    )
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "CONV_2D" in ops and "CONCATENATION" in ops
    assert "MIRROR_PAD" not in ops, sorted(ops)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_layer_norm_equals_keras_group_norm(policy):
    """`LayerNorm` computes Keras' `GroupNormalization(groups=1)` on the
    4-D map (no 5-D reshape, which TFLite would keep as two copies):
    bit-identical, in float32 and under a mixed policy."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        ours = LayerNorm(name="ours")
        ref = keras.layers.GroupNormalization(groups=1, epsilon=1e-12)
        shape = (2, 9, 13, 6)
        ours.build(shape)
        ref.build(shape)
        rng = np.random.RandomState(0)
        gamma, beta = rng.normal(size=(2, 6)).astype(np.float32)
        for layer in (ours, ref):
            layer.gamma.assign(gamma)
            layer.beta.assign(beta)
        x = tf.constant(rng.normal(1.5, 3.0, shape).astype(np.float32))
        x = tf.cast(x, ours.compute_dtype)
        want = ref(x).numpy()
        assert ours(x).dtype == ref(x).dtype
        np.testing.assert_array_equal(ours(x).numpy(), want)
        # The statistics path with the map's own statistics: the same.
        np.testing.assert_array_equal(
            ours(x, stats=ours.moments(x)).numpy(), want
        )
        # Traced (the export signatures) as well.
        fn = tf.function(lambda t: ours(t))
        np.testing.assert_array_equal(fn(x).numpy(), want)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_layer_norm_leaky_relu_is_applied_in_float32(policy):
    """`LayerNorm(x, leaky_alpha=0.2)` is LeakyReLU on the float32
    normalised map, then one cast: in float32 bit-identical to LeakyReLU
    after the norm; under mixed_bfloat16 within one bfloat16 rounding of
    the float32 result computed by hand."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        norm = LayerNorm()
        shape = (1, 7, 11, 4)
        norm.build(shape)
        rng = np.random.RandomState(1)
        norm.gamma.assign(rng.normal(size=4).astype(np.float32))
        norm.beta.assign(rng.normal(size=4).astype(np.float32))
        x = tf.cast(
            tf.constant(rng.normal(0.5, 2.0, shape).astype(np.float32)),
            norm.compute_dtype,
        )
        got = norm(x, leaky_alpha=0.2)
        assert got.dtype == norm.compute_dtype
        # The float32 normalised map, by hand from the float32 statistics.
        xf = tf.cast(x, tf.float32).numpy()
        mean, var = xf.mean(), xf.var()
        y = (xf - mean) / np.sqrt(var + 1e-12) * norm.gamma.numpy()
        y = y + norm.beta.numpy()
        want = np.where(y >= 0, y, 0.2 * y)
        if policy == "float32":
            np.testing.assert_array_equal(
                got.numpy(), tf.nn.leaky_relu(norm(x), 0.2).numpy()
            )
            np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
        else:
            # One rounding to bfloat16 (8 significant bits): <= 2^-8 rel.
            got = tf.cast(got, tf.float32).numpy()
            np.testing.assert_allclose(got, want, rtol=2**-8, atol=1e-6)
    finally:
        keras.mixed_precision.set_global_policy("float32")


# XNNPACK (LiteRT 2.3) delegates a CONCATENATION of at most 5 inputs.
XNNPACK_MAX_CONCAT_INPUTS = 5


@pytest.mark.parametrize("padding", [((3, 3), (3, 3)), ((1, 1), (1, 1))])
def test_reflect_pad_concats_fit_xnnpack(padding):
    fn = tf.function(
        lambda t: reflect_pad(t, padding),
        input_signature=[tf.TensorSpec([1, None, None, 3])],
    )
    graph = fn.get_concrete_function().graph
    concats = [op for op in graph.get_operations() if op.type == "ConcatV2"]
    # The last input of ConcatV2 is the axis.
    widths = [len(op.inputs) - 1 for op in concats]
    assert widths and max(widths) <= 3, widths
    assert max(widths) <= XNNPACK_MAX_CONCAT_INPUTS


def test_inverted_res_block_traced_equals_eager():
    """The norm's last op is not an ADD: with static shapes Grappler would
    merge it with the residual ADD into a reassociated sum (rounding
    differs from eager and from the dynamic-shape export signature)."""
    block = InvertedResBlock(16, 16)
    x = tf.random.normal([1, 16, 16, 16], seed=3)
    want = block(x).numpy()
    np.testing.assert_array_equal(tf.function(block)(x).numpy(), want)
    dynamic = tf.function(
        block, input_signature=[tf.TensorSpec([1, None, None, 16])]
    )
    np.testing.assert_array_equal(dynamic(x).numpy(), want)
