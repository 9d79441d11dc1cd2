"""Bulk stylization on Apache Beam (`pip install ".[beam]"`).

    python -m uegan_tf.inference.beam --input='photos/**/*.jpg' --output=out/ \
        [--model=STYLE|SAVEDMODEL|WORKDIR] [Beam pipeline options]

The pipeline, one Beam transform per stage:

    fileio.MatchFiles(--input) -> fileio.ReadMatches     Beam's file IO
    -> DecodeImage                 bytes -> uint8 RGB [H, W, 3]
    -> RunInference(KeyedModelHandler(StylizerModelHandler))
    -> WriteImage                  encode, write OUTPUT/<relative path>
    failures of any stage          -> OUTPUT/dead_letter.tsv

Outputs keep their path relative to the part of `--input` before its first
wildcard (`photos/a/b.jpg` -> `out/a/b.jpg`), and are named and encoded as
`uegan stylize` names and encodes them (`.jpg` for JPEG inputs, `.png`
otherwise; `image_io.encode_image`), so both commands write identical files
for the same model. Existing outputs are overwritten (a retried bundle
must be able to write again); each is written to a temporary name
(`<output>.part-<pid>`) and renamed, so a killed worker leaves no
half-written image under an output's name (it may leave the `.part-` file,
which nothing removes).

Why a custom `ModelHandler` around `uegan_tf.inference.stylizer.Stylizer` rather
than Beam's `TFModelHandlerTensor`:

- `TFModelHandlerTensor` stacks a batch with `tf.stack`: photos of
  different sizes cannot share a batch, so it would need
  `max_batch_size=1` anyway; it also loads models with
  `tf.keras.models.load_model`, which under Keras 3 does not load a
  SavedModel, and calls the model on float tensors, skipping the
  pre/post-processing the generator needs (uint8 <-> [-1, 1], reflect
  padding to multiples of 4, tiny-image padding, tiling of large images).
- `Stylizer` is the one inference path of this project (command line, web
  app): it takes a style name, a `.keras` file, a training work dir or an
  exported SavedModel, and is what makes outputs identical to
  `uegan stylize`.

So `batch_elements_kwargs` is `max_batch_size=1` (each image is its own
batch: sizes differ, and a generator call on one image already uses every
core of a worker), and the model is loaded once per worker process and
shared by its threads (Beam's default `shared.Shared`). Sharing across the
processes of one machine (`share_model_across_processes`) is not used: the
generator is ~9 MB, and Beam's cross-process sharing would send every image
through a proxy to one model server process, which then does all the work.

Failures never stop the job: an unreadable, corrupt or too-large input
(decoding), a failed generator call (`RunInference` with exception
handling) or a failed write each become one line `<input path>\\t<stage>:
<error>` in `OUTPUT/dead_letter.tsv` (empty when nothing failed).
"""

import logging
import os
import sys

import apache_beam as beam
from absl import flags
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from uegan_tf.errors import describe

DEAD_LETTER = "dead_letter.tsv"
FAILED = "failed"


def pattern_base(pattern):
    """The folder part of `pattern` before its first wildcard.

    `photos/**/*.jpg` -> `photos`; `gs://b/x/*.png` -> `gs://b/x`;
    `*.jpg` -> "". Outputs keep their path relative to it.
    """
    cut = min(
        (i for i in (pattern.find(c) for c in "*?[") if i >= 0),
        default=len(pattern),
    )
    prefix = pattern[:cut]  # a single file: all of it, then its folder
    return prefix.rsplit("/", 1)[0] if "/" in prefix else ""


def relative_path(path, base):
    """`path` relative to `base` (both as MatchFiles / the user wrote them)."""
    if base and path.startswith(base.rstrip("/") + "/"):
        return path[len(base.rstrip("/")) + 1 :]
    if "://" not in path:
        # MatchFiles may return absolute paths for a relative local pattern.
        return os.path.relpath(path, os.path.abspath(base or "."))
    return path.rsplit("/", 1)[-1]


def output_path(path, base, output_dir, image_format="auto"):
    """Where the stylized `path` goes: OUTPUT/<relative folder>/<name>."""
    from uegan_tf.inference.stylize import output_name

    rel = relative_path(path, base)
    folder, _, _ = rel.rpartition("/")
    name = output_name(rel, image_format)
    return _join(output_dir, *([folder] if folder else []), name)


def _join(base, *parts):
    """os.path.join, or "/"-joined for URLs (gs://, s3://, hdfs://)."""
    if "://" in base:
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


class DecodeImage(beam.DoFn):
    """`ReadableFile` -> `(path, rgb uint8 [H, W, 3])`; failures tagged.

    Same limits as `uegan stylize`: at least 4 px on the short side, at
    most `max_pixels` (checked from the header, before decoding).
    """

    def __init__(self, max_pixels):
        self.max_pixels = max_pixels

    def process(self, readable):
        from uegan_tf.image_io import decode_rgb

        path = readable.metadata.path
        try:
            rgb = decode_rgb(
                readable.read(),
                name=path,
                min_side=4,
                max_pixels=self.max_pixels,
            )
        except Exception as e:  # noqa: BLE001 - any failure is dead-lettered
            yield beam.pvalue.TaggedOutput(FAILED, (path, f"decode: {e}"))
            return
        yield path, rgb


class StylizerModelHandler(ModelHandler):
    """A Beam model handler running `uegan_tf.inference.stylizer.Stylizer`.

    Elements are uint8 RGB arrays `[H, W, 3]` of any size; predictions are
    uint8 RGB arrays of the same size (or the `max_side`-downscaled size).
    See the module docstring for why this is not `TFModelHandlerTensor`.
    """

    def __init__(self, model=None, step=None, tile=None, max_side=0):
        self.model_source = model
        self.step = step
        self.tile = tile
        self.max_side = max_side

    def load_model(self):
        from uegan_tf.inference.stylizer import Stylizer

        return Stylizer(
            self.model_source,
            step=self.step,
            tile=self.tile,
            max_side=self.max_side,
        )

    def run_inference(self, batch, model, inference_args=None):
        # One image per batch (batch_elements_kwargs): sizes differ.
        return [PredictionResult(rgb, model(rgb)) for rgb in batch]

    def batch_elements_kwargs(self):
        return {"max_batch_size": 1}

    def get_metrics_namespace(self):
        return "uegan_stylize"


class WriteImage(beam.DoFn):
    """`(path, PredictionResult)` -> the output file; yields its path."""

    def __init__(self, base, output_dir, image_format):
        self.base = base
        self.output_dir = output_dir
        self.image_format = image_format

    def process(self, element):
        from uegan_tf.image_io import encode_image

        path, result = element
        dst = output_path(path, self.base, self.output_dir, self.image_format)
        try:
            data = encode_image(result.inference, os.path.splitext(dst)[1])
            # Temporary name, then rename: no half-written file under the
            # final name if the worker dies.
            tmp = f"{dst}.part-{os.getpid()}"
            with FileSystems.create(tmp) as f:
                f.write(data)
            if FileSystems.exists(dst):
                FileSystems.delete([dst])
            FileSystems.rename([tmp], [dst])
        except Exception as e:  # noqa: BLE001 - dead-lettered
            yield beam.pvalue.TaggedOutput(FAILED, (path, f"write: {e}"))
            return
        yield dst


def _failed_inferences(item):
    """RunInference's dead letter: (failed batch, exception) -> lines."""
    batch, error = item
    for key, _ in batch:
        yield key, f"inference: {describe(error)}"


def _tsv_line(item):
    path, error = item
    # One line per input: tabs/newlines in messages would break the format.
    clean = " ".join(str(error).split())
    return f"{path}\t{clean}"


def build(
    pipeline,
    input_pattern,
    output_dir,
    model=None,
    step=None,
    tile=None,
    max_side=0,
    image_format="auto",
    max_pixels=None,
):
    """Add the stylization to `pipeline`.

    Returns:
        `(written, failed)`: PCollections of written output paths and of
        `(input path, error)` pairs (also written to
        `output_dir/dead_letter.tsv`).
    """
    from uegan_tf.image_io import MAX_PIXELS

    base = pattern_base(input_pattern)
    decoded = (
        pipeline
        | "Match" >> fileio.MatchFiles(input_pattern)
        | "Read" >> fileio.ReadMatches()
        | "Decode"
        >> beam.ParDo(DecodeImage(max_pixels or MAX_PIXELS)).with_outputs(
            FAILED, main="images"
        )
    )
    handler = KeyedModelHandler(
        StylizerModelHandler(model, step=step, tile=tile, max_side=max_side)
    )
    inferred, inference_dlq = (
        decoded.images
        | "Stylize" >> RunInference(handler).with_exception_handling()
    )
    written = inferred | "Write" >> beam.ParDo(
        WriteImage(base, output_dir, image_format)
    ).with_outputs(FAILED, main="written")
    failed = (
        decoded[FAILED],
        inference_dlq.failed_inferences
        | "InferenceErrors" >> beam.FlatMap(_failed_inferences),
        written[FAILED],
    ) | "AllFailures" >> beam.Flatten()
    _ = (
        failed
        | "Format" >> beam.Map(_tsv_line)
        | "DeadLetter"
        >> beam.io.WriteToText(
            _join(output_dir, DEAD_LETTER),
            shard_name_template="",
            num_shards=1,
        )
    )
    return written.written, failed


USAGE = """\
  python -m uegan_tf.inference.beam --input='photos/**/*.jpg' --output=DIR \\
      [--model=STYLE|SAVEDMODEL|WORKDIR] [Beam pipeline options]

Stylize many images on Apache Beam. Other arguments are Beam pipeline
options (--runner, --direct_num_workers, ...)."""


def parse_args(argv, flag_values=None):
    """`(BeamConfig, Beam pipeline arguments)` of `argv` (no program name).

    Flags of no `BeamConfig` setting are left for Beam's `PipelineOptions`.

    Raises:
        ValueError: one line naming the bad flag or value.
    """
    from uegan_tf import flags as uflags
    from uegan_tf.config import BeamConfig

    # Its own registry: absl's global flags are no Beam options.
    flag_values = flags.FlagValues() if flag_values is None else flag_values
    rest = uflags.parse_command(
        BeamConfig, ["beam", *argv], flag_values, known_only=True
    )
    return uflags.config_from_flags(BeamConfig, flag_values), rest[1:]


def _matches_any(pattern):
    """Whether Beam's file systems match at least one file for `pattern`."""
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    try:
        return bool(FileSystems.match([pattern])[0].metadata_list)
    except BeamIOError:  # some file systems raise on an empty match
        return False


def main(argv=None, flag_values=None):
    """Run the job; `argv` without the program name (default: sys.argv).

    Returns:
        The exit code: 0 done (failed inputs are in the dead letter), 2 a
        usage error.
    """
    from uegan_tf import flags as uflags

    argv = list(sys.argv[1:] if argv is None else argv)
    if uflags.wants_help(["beam", *argv]):
        from uegan_tf.config import BeamConfig

        print(uflags.command_help(BeamConfig, USAGE))
        return 0
    try:
        cfg, beam_args = parse_args(argv, flag_values)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # Fail before starting workers: a bad model is a usage error.
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import resolve_source

    try:
        resolve_source(cfg.model)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # An input that matches nothing would "succeed" with no output.
    if not _matches_any(cfg.input):
        print(
            f"error: --input matched no files: {cfg.input} (in Beam's "
            "patterns '**/' needs a subfolder: use 'photos/**')",
            file=sys.stderr,
        )
        return 2
    options = PipelineOptions(beam_args, save_main_session=False)
    with beam.Pipeline(options=options) as p:
        build(
            p,
            cfg.input,
            cfg.output,
            model=cfg.model,
            step=cfg.step,
            tile=cfg.tile,
            max_side=cfg.max_side,
            image_format=cfg.image_format,
        )
    print(
        f"done: outputs in {cfg.output}, failures listed in "
        f"{_join(cfg.output, DEAD_LETTER)}"
    )
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    sys.exit(main())
