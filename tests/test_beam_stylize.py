"""Bulk stylization on Apache Beam (DirectRunner), against `uegan stylize`."""

import pathlib

import keras
import numpy as np
import pytest

beam = pytest.importorskip("apache_beam", reason="pip install '.[beam]'")

from uegan_tf import export as uexport  # noqa: E402
from uegan_tf.image_io import encode_image  # noqa: E402
from uegan_tf.image_io import save_rgb  # noqa: E402
from uegan_tf.inference import stylize  # noqa: E402
from uegan_tf.inference.beam import DEAD_LETTER  # noqa: E402
from uegan_tf.inference.beam import main  # noqa: E402
from uegan_tf.inference.beam import output_path  # noqa: E402
from uegan_tf.inference.beam import pattern_base  # noqa: E402
from uegan_tf.models import build_generator  # noqa: E402
from uegan_tf.testing import synthetic_image  # noqa: E402

# Relative path -> (height, width): sizes differ (odd ones too), so no two
# images could be stacked into one batch.
GOOD = {
    "one.jpg": (40, 52),
    "a/two.png": (33, 47),
    "a/b/three.jpg": (64, 48),
    "a/four.bmp": (20, 30),
}
# Half of a real JPEG, and text named .png.
BAD = {
    "broken.jpg": encode_image(synthetic_image(48, 64, seed=9), ".jpg")[:600],
    "a/notes.png": b"not an image at all\n",
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    keras.utils.set_random_seed(3)
    return uexport.write_saved_model(
        build_generator(unet=True, width=4),  # tiny: pipeline plumbing
        tmp_path_factory.mktemp("exports"),
        fixed_size=(32, 32),
        warmup_image=False,
    )


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    for i, (rel, (h, w)) in enumerate(GOOD.items()):
        save_rgb(root / rel, synthetic_image(h, w, seed=i))
    for rel, data in BAD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _out_rel(rel):
    return str(pathlib.PurePath(rel).parent / stylize.output_name(rel))


def test_pattern_base_and_output_paths():
    assert pattern_base("photos/**/*.jpg") == "photos"
    assert pattern_base("/data/x/*.png") == "/data/x"
    assert pattern_base("gs://bucket/in/**") == "gs://bucket/in"
    assert pattern_base("*.jpg") == ""
    assert pattern_base("photos/one.jpg") == "photos"
    assert output_path("photos/a/b.JPEG", "photos", "out") == "out/a/b.jpg"
    assert output_path("photos/c.webp", "photos", "out") == "out/c.png"
    assert (
        output_path("gs://b/in/x/y.jpg", "gs://b/in", "gs://b/out")
        == "gs://b/out/x/y.jpg"
    )


def test_beam_outputs_equal_uegan_stylize_and_bad_inputs_are_dead_lettered(
    tmp_path, photos, saved_model
):
    out = tmp_path / "out"
    code = main(
        [
            f"--input={photos}/**",
            f"--output={out}",
            f"--model={saved_model}",
            "--runner=DirectRunner",
        ]
    )
    assert code == 0
    # The reference: `uegan stylize photos/ --model=...` (in process).
    ref = tmp_path / "ref"
    failures = stylize.run(
        stylize.StylizeConfig(
            inputs=(str(photos),), out_dir=str(ref), model=str(saved_model)
        ).validate(),
        log=lambda m: None,
        err=lambda m: None,
        progress=False,
    )
    assert failures == len(BAD)
    written = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
    )
    expected = sorted(_out_rel(rel) for rel in GOOD)
    assert written == sorted(expected + [DEAD_LETTER])
    for rel in expected:
        beam_bytes = (out / rel).read_bytes()
        ref_bytes = (ref / "photos" / rel).read_bytes()
        assert beam_bytes == ref_bytes, rel  # identical files
    # Each output has its input's size.
    from uegan_tf.image_io import load_rgb

    for rel, (h, w) in GOOD.items():
        assert load_rgb(out / _out_rel(rel)).shape == (h, w, 3)
    # Every bad input, and only those, in the dead letter with its error.
    lines = (out / DEAD_LETTER).read_text().splitlines()
    assert len(lines) == len(BAD)
    listed = {}
    for line in lines:
        path, error = line.split("\t")
        listed[str(pathlib.Path(path).relative_to(photos))] = error
    assert set(listed) == set(BAD)
    assert "corrupt or truncated image" in listed["broken.jpg"]
    assert "not an image" in listed["a/notes.png"]
    assert all(e.startswith("decode: ") for e in listed.values())


def test_inference_failure_is_dead_lettered_not_fatal(tmp_path, photos):
    """A generator call that raises lands in the dead letter too."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from uegan_tf.inference import beam as beam_stylize

    class Failing(beam_stylize.StylizerModelHandler):
        def load_model(self):
            def model(rgb):
                if rgb.shape[0] == 33:  # a/two.png
                    raise ValueError("boom")
                return np.zeros_like(rgb)

            return model

    original = beam_stylize.StylizerModelHandler
    beam_stylize.StylizerModelHandler = Failing
    try:
        out = tmp_path / "out"
        with beam.Pipeline(options=PipelineOptions([])) as p:
            beam_stylize.build(p, f"{photos}/**", str(out))
    finally:
        beam_stylize.StylizerModelHandler = original
    lines = (out / DEAD_LETTER).read_text().splitlines()
    inference = [line for line in lines if "\tinference: " in line]
    assert len(inference) == 1 and "a/two.png" in inference[0]
    assert "ValueError: boom" in inference[0]
    assert len(lines) == len(BAD) + 1
    assert (out / "one.jpg").exists() and not (out / "a/two.png").exists()


def test_unloadable_model_is_a_usage_error(tmp_path, photos, capsys):
    code = main(
        [
            f"--input={photos}/**",
            f"--output={tmp_path / 'out'}",
            f"--model={tmp_path / 'missing'}",
        ]
    )
    assert code == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # no pipeline was started


def test_input_matching_nothing_is_a_usage_error(tmp_path, capsys):
    """`flat/**/*.jpg` needs a subfolder in Beam: with the one photo at the
    top level it matches nothing, which must not end as a silent "done"."""
    save_rgb(tmp_path / "flat" / "one.jpg", synthetic_image(40, 52, seed=0))
    code = main(
        [
            f"--input={tmp_path / 'flat'}/**/*.jpg",
            f"--output={tmp_path / 'out'}",
            "--model=anime",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --input matched no files")
        and "'photos/**'" in err
    )
    assert not (tmp_path / "out").exists()
