"""Layer helpers of `uegan_tf.models.layers`."""

import numpy as np
import pytest
import tensorflow as tf

from uegan_tf.models import build_generator
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
