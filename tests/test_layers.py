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
