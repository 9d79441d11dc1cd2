"""Generator, discriminator and VGG feature extractor."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import shared_path

from uegan_tf.importers import load_official_checkpoint
from uegan_tf.importers import read_official_checkpoint
from uegan_tf.models import Generator
from uegan_tf.models import build_discriminator
from uegan_tf.models import build_feature_discriminator
from uegan_tf.models import build_generator
from uegan_tf.models import build_vgg_features
from uegan_tf.models import copy_plain_weights
from uegan_tf.models.layers import resize_bilinear

CONFORMANCE = ("conformance", "animeganv2_tf1")
CASES = ("astronaut_256x256", "random_132x200", "random_64x48")


def _trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def plain():
    keras.utils.set_random_seed(1)
    return build_generator(unet=False)


@pytest.fixture(scope="module")
def ue():
    keras.utils.set_random_seed(2)
    return build_generator(unet=True)


def test_parameter_counts(plain, ue):
    assert plain.count_params() == 2_143_552
    assert _trainable_count(plain) == 2_143_552
    assert ue.count_params() == 2_235_712
    assert ue.count_params() - plain.count_params() == 92_160


def _hand_count(c, unet):
    """Generator parameters at base width c, layer by layer (no Keras)."""

    def cnl(k, cin, cout):  # bias-free conv + layer-norm gamma, beta
        return k * k * cin * cout + 2 * cout

    def irb(cin, cout):  # expansion 2: 1x1 expand, 3x3 depthwise + bias, 1x1
        mid = 2 * cin
        return cnl(1, cin, mid) + (9 * mid + mid + 2 * mid) + cnl(1, mid, cout)

    skip1, skip0 = (2 * c, c) if unet else (0, 0)
    encoder = (
        cnl(7, 3, c)
        + cnl(3, c, 2 * c)
        + cnl(3, 2 * c, 2 * c)
        + cnl(3, 2 * c, 4 * c)
        + cnl(3, 4 * c, 4 * c)
    )
    bottleneck = (
        cnl(3, 4 * c, 4 * c)
        + irb(4 * c, 8 * c)
        + 3 * irb(8 * c, 8 * c)
        + cnl(3, 8 * c, 4 * c)
    )
    decoder = (
        cnl(3, 4 * c + skip1, 4 * c)
        + cnl(3, 4 * c, 4 * c)
        + cnl(3, 4 * c + skip0, 2 * c)
        + cnl(3, 2 * c, 2 * c)
        + cnl(7, 2 * c, c)
        + c * 3  # E_2, then the 1x1 output conv
    )
    return encoder + bottleneck + decoder


def test_hand_count_matches_the_reference_counts():
    # The counter itself, on the two published numbers and on the closed
    # forms plain 2060c^2 + 1066c, UE 2150c^2 + 1066c.
    assert _hand_count(32, False) == 2_143_552
    assert _hand_count(32, True) == 2_235_712
    for c in (1, 4, 8):
        assert _hand_count(c, False) == 2060 * c * c + 1066 * c
        assert _hand_count(c, True) == 2150 * c * c + 1066 * c


@pytest.mark.parametrize("width", [1, 4, 8])
@pytest.mark.parametrize("unet", [False, True])
def test_width_scales_every_stage(width, unet):
    g = build_generator(unet=unet, width=width)
    assert g.count_params() == _hand_count(width, unet)
    assert g.a0.conv.kernel.shape == (7, 7, 3, width)
    assert g.c_r2.expand.conv.kernel.shape == (1, 1, 8 * width, 16 * width)
    skip = 2 * width if unet else 0
    assert g.d0.conv.kernel.shape == (3, 3, 4 * width + skip, 4 * width)
    y = g(tf.random.uniform((1, 20, 12, 3), -1.0, 1.0, seed=0))
    assert y.shape == (1, 20, 12, 3)
    # get_config round trip keeps the width (saved models rebuild it).
    clone = Generator.from_config(g.get_config())
    clone(tf.zeros([1, 8, 8, 3]))
    assert clone.width == width
    assert clone.count_params() == g.count_params()


def test_width_must_be_positive():
    with pytest.raises(ValueError, match="width must be >= 1"):
        Generator(width=0)


@pytest.mark.parametrize(
    "shape", [(2, 32, 32), (1, 64, 48), (1, 30, 18), (1, 33, 21)]
)
def test_generator_output_shape_and_range(ue, shape):
    x = tf.random.uniform((*shape, 3), -1.0, 1.0, seed=0)
    y = ue(x)
    assert y.shape == (*shape, 3)
    assert y.dtype == tf.float32
    assert float(tf.reduce_min(y)) >= -1.0
    assert float(tf.reduce_max(y)) <= 1.0


def test_generator_traced_with_unknown_size(plain, ue):
    for g in (plain, ue):
        fn = tf.function(
            g, input_signature=[tf.TensorSpec([None, None, None, 3])]
        )
        for h, w in ((32, 32), (44, 28), (37, 50)):
            x = tf.random.uniform((1, h, w, 3), -1.0, 1.0, seed=1)
            y = fn(x)
            assert y.shape == (1, h, w, 3)
            np.testing.assert_allclose(y, g(x), atol=1e-5)


def test_internal_padding_equals_explicit_reflect_pad_and_crop(plain):
    # A size that is not a multiple of 4 is reflect-padded bottom/right
    # inside the model and cropped back.
    x = tf.random.uniform((1, 30, 26, 3), -1.0, 1.0, seed=3)
    padded = tf.pad(x, [[0, 0], [0, 2], [0, 2], [0, 0]], mode="REFLECT")
    np.testing.assert_allclose(plain(x), plain(padded)[:, :30, :26], atol=1e-6)


def test_ue_at_initialisation_equals_plain(plain):
    keras.utils.set_random_seed(7)
    ue = build_generator(unet=True)
    # A fresh UE generator already has zero skip slices.
    for layer, n in ((ue.d0, 64), (ue.e0, 32)):
        kernel = layer.conv.kernel.numpy()
        assert np.all(kernel[:, :, -n:, :] == 0)
        assert np.any(kernel[:, :, :-n, :] != 0)
    copy_plain_weights(plain, ue)
    x = tf.random.uniform((2, 48, 40, 3), -1.0, 1.0, seed=4)
    diff = np.abs(plain(x).numpy() - ue(x).numpy()).max()
    assert diff <= 1e-5
    # Once the skip slices are non-zero the functions differ.
    ue.d0.conv.kernel.assign(ue.d0.conv.kernel + 0.01)
    assert np.abs(plain(x).numpy() - ue(x).numpy()).max() > 1e-3


def test_copy_ue_into_plain_is_refused(plain, ue):
    with pytest.raises(ValueError, match="UE"):
        copy_plain_weights(ue, plain)


def test_legacy_resize_differs_from_tf2_default():
    # The reference's TF1 bilinear resize (half_pixel_centers=False) is not
    # TF2's tf.image.resize; mixing them up changes the generator output.
    x = tf.reshape(tf.range(16.0), [1, 4, 4, 1])
    legacy = resize_bilinear(x, [8, 8], "tf1")
    # TF1 legacy maps output pixel i to input i/2: row 1 is the mean of
    # input rows 0 and 1, the last row repeats input row 3.
    np.testing.assert_allclose(legacy[0, 1, 0, 0], (0.0 + 4.0) / 2)
    np.testing.assert_allclose(legacy[0, 7, :, 0][::2], [12, 13, 14, 15])
    modern = tf.image.resize(x, [8, 8], method="bilinear")
    assert np.abs(legacy - modern).max() > 0.5
    np.testing.assert_allclose(
        resize_bilinear(x, [8, 8], "half_pixel"), modern, atol=1e-6
    )


@pytest.mark.parametrize("unet", [False, True])
def test_generator_keras_round_trip(tmp_path, unet):
    keras.utils.set_random_seed(3)
    g = build_generator(unet=unet, upsample="align_corners")
    path = tmp_path / "g.keras"
    g.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, Generator)
    assert restored.unet == unet and restored.upsample == "align_corners"
    x = tf.random.uniform((1, 36, 20, 3), -1.0, 1.0, seed=5)
    np.testing.assert_array_equal(g(x).numpy(), restored(x).numpy())


def test_discriminator_patch_shape_and_params():
    d = build_discriminator()
    assert _trainable_count(d) == 1_128_800
    assert d(tf.zeros([2, 256, 256, 3])).shape == (2, 64, 64, 1)
    assert d(tf.zeros([1, 96, 64, 3])).shape == (1, 24, 16, 1)
    assert d(tf.zeros([1, 36, 20, 3])).shape == (1, 9, 5, 1)
    assert d.compute_output_shape((1, 36, 20, 3)) == (1, 9, 5, 1)


def test_discriminator_has_no_bias_and_spectral_norm_everywhere():
    d = build_discriminator()
    names = [w.path for w in d.weights]
    assert not any("bias" in n for n in names)
    kernels = [n for n in names if n.endswith("kernel")]
    us = [n for n in names if n.endswith("/u")]
    assert len(kernels) == len(us) == 7


def test_spectral_norm_power_iteration_converges():
    d = build_discriminator()
    layer = d.blocks[2][0]  # conv_s1_1, 64 -> 128
    u0 = layer.u.numpy().copy()
    layer.normalized_kernel(training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u0)  # inference: fixed u
    for _ in range(60):
        kernel = layer.normalized_kernel(training=True)
    assert np.any(layer.u.numpy() != u0)
    w = kernel.numpy().reshape(-1, layer.filters)
    top = np.linalg.svd(w, compute_uv=False)[0]
    assert abs(top - 1.0) < 1e-3


def test_spectral_norm_gradient_flows_through_sigma():
    d = build_discriminator()
    layer = d.blocks[0][0]
    with tf.GradientTape() as tape:
        k = layer.normalized_kernel(training=False)
        loss = tf.reduce_sum(k)
    grad = tape.gradient(loss, layer.kernel)
    # d/dW sum(W / sigma) = 1/sigma - sum(W) / sigma^2 * d sigma / dW: not
    # a constant matrix when sigma depends on W.
    g = grad.numpy()
    assert np.isfinite(g).all() and g.std() > 0


def test_discriminator_keras_round_trip(tmp_path):
    d = build_discriminator()
    d(tf.zeros([1, 32, 32, 3]), training=True)  # move u off its init
    path = tmp_path / "d.keras"
    d.save(path)
    restored = keras.models.load_model(path)
    x = tf.random.uniform((2, 32, 24, 3), -1.0, 1.0, seed=6)
    np.testing.assert_array_equal(d(x).numpy(), restored(x).numpy())


def test_feature_discriminator_head_shape_params_and_round_trip(tmp_path):
    d = build_feature_discriminator(128)
    # Two bias-free 3x3 convs: 256 -> 128 -> 1 (docs/design.md).
    assert _trainable_count(d) == 9 * 256 * 128 + 9 * 128 * 1 == 296_064
    assert not any("bias" in w.path for w in d.weights)
    assert len([w for w in d.weights if w.path.endswith("/u")]) == 2
    # Block-3 maps of a 128x96 image are 32x24: logits at the same 1/4
    # size as the reference discriminator's.
    vgg = build_vgg_features("vgg16", weights=None)
    images = tf.random.uniform((2, 128, 96, 3), -1.0, 1.0, seed=8)
    taps = vgg.block_activations(images, blocks=3)
    assert len(taps) == 3 and taps[-1].shape == (2, 32, 24, 256)
    np.testing.assert_array_equal(  # stopping early changes nothing
        taps[-1].numpy(), vgg.block_activations(images)[2].numpy()
    )
    logits = d(taps[-1], training=True)  # moves u off its init
    assert logits.shape == (2, 32, 24, 1) and logits.dtype == tf.float32
    assert d.compute_output_shape((2, 32, 24, 256)) == (2, 32, 24, 1)
    d.save(tmp_path / "fd.keras")
    restored = keras.models.load_model(tmp_path / "fd.keras")
    assert (restored.channels, restored.spectral_norm) == (128, True)
    np.testing.assert_array_equal(
        d(taps[-1]).numpy(), restored(taps[-1]).numpy()
    )


def test_vgg19_random_shape_frozen_and_caffe_preprocessing():
    vgg = build_vgg_features("vgg19", weights=None)
    assert vgg.trainable_weights == []
    assert len(vgg.convs) == 12  # up to conv4_4
    y = vgg(tf.zeros([2, 32, 48, 3]))
    assert y.shape == (2, 4, 6, 512)
    x = tf.constant([[[[1.0, 0.0, -1.0]]]])  # RGB (255, 127.5, 0)
    pre = vgg.preprocess(x).numpy().ravel()
    np.testing.assert_allclose(
        pre, [0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68], rtol=1e-6
    )


def test_vgg_features_match_keras_applications(tmp_path):
    """Our pre-ReLU features, ReLU'd, equal Keras' own VGG layer output."""
    keras.utils.set_random_seed(11)
    ref = keras.applications.VGG19(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    path = tmp_path / "vgg19.weights.h5"
    ref.save_weights(path)
    ours = build_vgg_features("vgg19", weights=str(path))
    x = tf.random.uniform((1, 32, 32, 3), -1.0, 1.0, seed=8)
    probe = keras.Model(ref.input, ref.get_layer("block4_conv4").output)
    expected = probe(ours.preprocess(x))
    np.testing.assert_allclose(
        tf.nn.relu(ours(x)), expected, rtol=1e-4, atol=1e-3
    )


def test_vgg16_npz_loading(tmp_path):
    keras.utils.set_random_seed(12)
    ref = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    arrays = {}
    convs = [layer for layer in ref.layers if "conv" in layer.name]
    for layer in convs:
        b, i = layer.name.replace("block", "").split("_conv")
        kernel, bias = layer.get_weights()
        arrays[f"conv{b}_{i}/kernel"] = kernel
        arrays[f"conv{b}_{i}/bias"] = bias
    path = tmp_path / "vgg16.npz"
    np.savez(path, **arrays)
    ours = build_vgg_features("vgg16", weights=str(path))
    assert len(ours.convs) == 10  # up to conv4_3
    x = tf.random.uniform((1, 32, 32, 3), -1.0, 1.0, seed=9)
    probe = keras.Model(ref.input, ref.get_layer("block4_conv3").output)
    np.testing.assert_allclose(
        tf.nn.relu(ours(x)), probe(ours.preprocess(x)), rtol=1e-4, atol=1e-4
    )
    # torchvision preprocessing: white -> (1 - mean) / std.
    pre = ours.preprocess(tf.ones([1, 1, 1, 3])).numpy().ravel()
    np.testing.assert_allclose(
        pre,
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
        rtol=1e-6,
    )


def test_vgg_bad_weights_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_vgg_features("vgg16", weights=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="vgg16"):
        build_vgg_features("vgg16", weights="imagenet")
    with pytest.raises(ValueError):
        build_vgg_features("vgg11")


def test_offline_vgg16_weights_are_pretrained():
    path = shared_path("weights", "vgg16_imagenet_features.npz")
    vgg = build_vgg_features("vgg16", weights=str(path))
    data = np.load(path)
    np.testing.assert_array_equal(
        vgg.convs[0].kernel.numpy(), data["conv1_1/kernel"]
    )
    np.testing.assert_array_equal(
        vgg.convs[-1].bias.numpy(), data["conv4_3/bias"]
    )


# ---------------------------------------------------------------------------
# Conformance with the official AnimeGANv2 graph.


@pytest.fixture(scope="module")
def conformance():
    root = shared_path(*CONFORMANCE)
    return root, np.load(root / "vectors.npz")


@pytest.mark.parametrize("unet", [False, True])
def test_official_checkpoint_reproduces_official_outputs(conformance, unet):
    root, vectors = conformance
    g = build_generator(unet=unet)
    load_official_checkpoint(g, str(root / "generator_random_weight"))
    for case in CASES:
        x = vectors[f"input/{case}"]
        expected = vectors[f"output/{case}"]
        diff = np.abs(g(x).numpy() - expected).max()
        assert diff <= 1e-4, (case, diff)


def test_official_checkpoint_has_every_parameter(conformance):
    root, _ = conformance
    values = read_official_checkpoint(str(root / "generator_random_weight"))
    assert len(values) == 77
    assert sum(v.size for v in values.values()) == 2_143_552


def test_official_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_official_checkpoint(str(tmp_path / "nothing"))
    ckpt = tf.train.Checkpoint(v=tf.Variable(1.0))
    prefix = ckpt.write(str(tmp_path / "other" / "ckpt"))
    with pytest.raises(ValueError, match="not an AnimeGANv2"):
        read_official_checkpoint(prefix)


def test_tf_checkpoint_round_trip_restores_every_weight(tmp_path):
    """Generator- and discriminator-only tf.train.Checkpoints are complete.

    (Keras 3 layers kept in Python lists are invisible to tf.train.Checkpoint;
    the models keep sublayers as attributes so that every weight is saved.)
    """
    keras.utils.set_random_seed(21)
    g, d = build_generator(unet=True), build_discriminator()
    path = tf.train.Checkpoint(generator=g, discriminator=d).write(
        str(tmp_path / "ckpt")
    )
    keras.utils.set_random_seed(22)
    g2, d2 = build_generator(unet=True), build_discriminator()
    tf.train.Checkpoint(generator=g2, discriminator=d2).read(
        path
    ).assert_consumed()
    for a, b in zip(g.weights + d.weights, g2.weights + d2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _numpy_power_iteration(kernel, u):
    """One power iteration in float64: (new u, sigma) as in SpectralConv2D."""
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    u = np.asarray(u, np.float64)
    v = u @ w.T
    v /= np.linalg.norm(v)
    u = v @ w
    u /= np.linalg.norm(u)
    return u, (v @ w @ u.T).item()


@pytest.fixture
def mixed_float16():
    """The mixed_float16 global policy, restored afterwards (even on error)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_spectral_norm_power_iteration_in_float32_under_mixed_precision(
    mixed_float16,
):
    """Under mixed_float16, u and sigma are float32-exact (issue 14).

    The iteration used to read the float16 autocast kernel (and u): ~1e-3
    relative errors, far above 1e-6.
    """
    from uegan_tf.models.layers import SpectralConv2D

    keras.utils.set_random_seed(3)
    layer = SpectralConv2D(16, name="sn")
    x = tf.random.normal([1, 8, 8, 8])
    layer(x)  # build
    kernel = layer.kernel.numpy()
    assert layer.kernel.dtype == layer.u.dtype == "float32"

    # A training call (autocast scope active) updates u in float32.
    u0 = layer.u.numpy()
    y = layer(x, training=True)
    assert y.dtype == tf.float16
    u1, _ = _numpy_power_iteration(kernel, u0)
    assert layer.u.dtype == "float32"
    np.testing.assert_allclose(layer.u.numpy(), u1, rtol=1e-6, atol=1e-7)

    # sigma as seen inside a mixed-precision layer call.
    class Probe(keras.layers.Layer):
        def call(self, x):
            return layer.sigma(training=True)

    u2, sigma = _numpy_power_iteration(kernel, layer.u.numpy())
    got = Probe()(x)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy().item(), sigma, rtol=1e-6)
    np.testing.assert_allclose(layer.u.numpy(), u2, rtol=1e-6, atol=1e-7)


def test_vgg19_weights_that_cannot_be_had_are_one_line(tmp_path, monkeypatch):
    """Offline, Keras' VGG19 download raises a bare Exception (URL and
    errno) that reached the user as a traceback; a damaged .h5 did too.
    Both are one-line ValueErrors (the train command's exit-2 path)."""
    bad = tmp_path / "vgg19.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(
        ValueError, match=r"^cannot read VGG19 weights .*vgg19\.h5 \("
    ) as e:
        build_vgg_features("vgg19", str(bad))
    assert "\n" not in str(e.value)

    def offline(**kwargs):
        assert kwargs["weights"] == "imagenet"
        raise Exception(  # what keras.utils.get_file raises offline
            "URL fetch failure on https://storage.googleapis.com/x.h5: None "
            "-- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(keras.applications, "VGG19", offline)
    with pytest.raises(ValueError) as e:
        build_vgg_features("vgg19", "imagenet")
    assert str(e.value).startswith(
        "cannot download Keras' ImageNet VGG19 weights into ~/.keras/models "
        "(URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
        "[Errno -2] Name or service not known); offline, pass a local VGG19"
    )
