"""The whole export: SavedModel, then every format of `formats.FORMATS`,
each checked against Keras, then a JSON report.

`export_generator` reads as its steps: photos, SavedModel, formats, report.
"""

import importlib.util
import json
import math
import pathlib

from uegan_tf.export import photos as photos_lib
from uegan_tf.export.checks import compare
from uegan_tf.export.checks import keras_outputs
from uegan_tf.export.formats import FORMATS
from uegan_tf.export.options import ExportError
from uegan_tf.export.savedmodel import saved_model_runner
from uegan_tf.export.savedmodel import signature_names
from uegan_tf.export.savedmodel import write_saved_model
from uegan_tf.export.serving import WARMUP_FILE
from uegan_tf.fileutil import clean_stale_temps
from uegan_tf.fileutil import dir_size
from uegan_tf.fileutil import write_text_atomic
from uegan_tf.image_ops import fit_cover


def export_generator(generator, options, log=print):
    """SavedModel, then the other formats from it, then checks and a report.

    Writes `<out_dir>/<name>/<version>/` (SavedModel with warmup requests),
    per format its files (`<out_dir>/<name>_v<version>_<label>.tflite` per
    quantization mode, `<out_dir>/<name>_v<version>.onnx`) and the report
    `<out_dir>/<name>_v<version>_report.json`; every file atomically.

    Args:
        generator: a built generator.
        options: `ExportOptions`.
        log: one-line progress messages.

    Returns:
        The report (a JSON-ready dict).

    Raises:
        ExportError: a conversion failed, or no photos for int8.
        FileExistsError: the version already exists.
        ValueError: invalid options.
    """
    options.validate()
    _check_packages(options)
    out_dir = pathlib.Path(options.out_dir)
    # Photos first: a missing folder should fail before minutes of work.
    calib_photos = _calibration_photos(options, log)
    val_photos = _check_photos(options)
    saved = _write_saved_model(generator, options, val_photos, log)
    stem = f"{options.name}_v{int(saved.name)}"
    report = _new_report(options, saved, val_photos)
    references = keras_outputs(generator, val_photos)

    def check(entry, run):
        if val_photos:
            result = compare(run, val_photos, references)
            entry["psnr_db"] = _json_number(result["psnr_db"])
            entry["max_abs_err"] = _json_number(result["max_abs_err"], 5)
        report["models"].append(entry)
        log(_describe(entry))

    check(
        {
            "format": "saved_model",
            "quantize": "none",
            "path": str(saved),
            "size_bytes": report["saved_model_bytes"],
            "input_shape": [1, -1, -1, 3],
        },
        saved_model_runner(saved),
    )
    for name in _wanted_formats(options):
        fmt = FORMATS[name]
        for entry, content in fmt.write_models(
            saved, out_dir, stem, options, calib_photos, log
        ):
            runner = fmt.runner(content, options.num_threads)
            # TFLite models know their input shape (fixed or dynamic).
            if "input_shape" not in entry:
                entry["input_shape"] = runner.shape_signature
            check(entry, runner)

    report_path = out_dir / f"{stem}_report.json"
    write_text_atomic(report_path, json.dumps(report, indent=2) + "\n")
    report["report_path"] = str(report_path)
    return report


def _wanted_formats(options):
    """The requested formats, in table order."""
    return [name for name in FORMATS if name in options.formats]


def _check_packages(options):
    """Refuse a format whose packages are missing before anything is
    written (not after minutes of work, with a SavedModel left behind)."""
    for name in _wanted_formats(options):
        missing = [
            package
            for package in FORMATS[name].requires
            if importlib.util.find_spec(package) is None
        ]
        if missing:
            raise ExportError(
                f"--format={name} needs {' and '.join(missing)} "
                f"(pip install {' '.join(missing)})"
            )


def _calibration_photos(options, log):
    """int8 calibration photos: the folder's, else views of the bundled."""
    fixed = options.tflite_fixed_size
    if options.representative_dir:
        return photos_lib.load_photos(
            options.representative_dir, fixed, options.calibration_steps
        )
    if not any(
        FORMATS[name].needs_calibration(options)
        for name in _wanted_formats(options)
    ):
        return []
    # Whole photos and their quadrants: 20 calibration images.
    photos = (
        photos_lib.sample_photos(fixed)
        + photos_lib.sample_photos(fixed, quadrants=True)
    )[: options.calibration_steps]
    log(
        f"int8 calibration on {len(photos)} views of the bundled "
        "example photos (no --representative_dir)"
    )
    return photos


def _check_photos(options):
    """The photos every exported model is compared with Keras on."""
    if not options.num_eval_images:
        return []
    fixed = options.tflite_fixed_size
    source = options.val_dir or options.representative_dir
    if source:
        return photos_lib.load_photos(source, fixed, options.num_eval_images)
    return photos_lib.sample_photos(fixed)[: options.num_eval_images]


def _write_saved_model(generator, options, val_photos, log):
    """The SavedModel version folder, warm-up requests from a check photo."""
    out_dir = pathlib.Path(options.out_dir)
    sample = val_photos[0] if val_photos else None
    if sample is not None:
        sample = fit_cover(sample, (64, 64))
    # Temporaries of a killed earlier export (a version folder, .tflite).
    for folder in (out_dir, out_dir / options.name):
        for path in clean_stale_temps(folder):
            log(f"removed {path}, left by an interrupted export")
    saved = write_saved_model(
        generator,
        out_dir,
        options.name,
        options.version,
        fixed_size=options.tflite_fixed_size,
        warmup_image=(sample if options.warmup else False),
    )
    log(f"SavedModel: {saved}")
    return saved


def _new_report(options, saved, val_photos):
    return {
        "name": options.name,
        "version": int(saved.name),
        "saved_model": str(saved),
        "saved_model_bytes": dir_size(saved),
        "signatures": signature_names(saved),
        "warmup_requests": (
            str(saved / WARMUP_FILE) if options.warmup else None
        ),
        "psnr": "float outputs in [-1, 1], peak 2.0, pooled over images",
        "eval_images": len(val_photos),
        "eval_size": list(options.tflite_fixed_size),
        "models": [],
    }


def _json_number(value, digits=2):
    if value is None:
        return None
    if math.isinf(value):
        return "inf"
    return round(value, digits)


def _describe(entry):
    shape = "x".join("?" if d < 0 else str(d) for d in entry["input_shape"])
    text = (
        f"{entry['format']:<11} {entry['quantize']:<8} "
        f"{entry['size_bytes'] / 1e6:8.2f} MB  input {shape:<12}"
    )
    if "psnr_db" in entry:
        text += f"  PSNR {entry['psnr_db']} dB"
    return text


def report_table(report):
    """The report's models as a Markdown table."""
    rows = [
        "| format | quantize | size (MB) | input | PSNR vs Keras (dB) |",
        "|---|---|---|---|---|",
    ]
    for m in report["models"]:
        shape = "x".join("?" if d < 0 else str(d) for d in m["input_shape"])
        rows.append(
            f"| {m['format']} | {m['quantize']} | "
            f"{m['size_bytes'] / 1e6:.2f} | {shape} | "
            f"{m.get('psnr_db', 'n/a')} |"
        )
    return "\n".join(rows)
