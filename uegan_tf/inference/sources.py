"""Where a model comes from: classify a `--model` / `--checkpoint` source.

Kept free of TensorFlow so that every command can reject a source that
names nothing in a fraction of a second, before TensorFlow's import (5-8 s
on a 2-core CPU). Loading is `stylizer.load_generator` /
`stylizer.load_backend`.
"""

import pathlib

from uegan_tf import registry

# What `load_generator` accepts, for error messages.
SOURCES_HELP = (
    "a style name (see `uegan list-styles`), a .keras generator file, a "
    "training work dir (config.json + checkpoints/), a SavedModel folder "
    "or an official AnimeGANv2 TF1 checkpoint folder"
)


class ModelLoadError(Exception):
    """A model source that cannot be loaded; `str()` is one line."""


def _is_savedmodel(path):
    return (path / "saved_model.pb").exists()


def _is_tf1_checkpoint(path):
    return (
        path.is_dir()
        and any(path.glob("*.index"))
        and not (path / "config.json").exists()
    )


def resolve_source(source):
    """Classify a model source.

    Returns:
        `(kind, path)` with kind in "keras", "workdir", "savedmodel",
        "tf1_checkpoint"; a style name resolves to its `.keras` file.

    Raises:
        ModelLoadError: nothing usable at `source`.
    """
    if source is None:
        source = registry.DEFAULT_STYLE
    path = pathlib.Path(source).expanduser()
    if path.is_file() and path.suffix == ".keras":
        return "keras", path
    if path.is_dir():
        if (path / registry.GENERATOR_FILE).exists():
            return "keras", path / registry.GENERATOR_FILE
        if (path / "config.json").exists():
            return "workdir", path
        if _is_savedmodel(path):
            return "savedmodel", path
        # A versioned export base: <base>/<name>/<version>/saved_model.pb.
        versions = sorted(
            (
                p
                for p in path.iterdir()
                if p.is_dir() and p.name.isdigit() and _is_savedmodel(p)
            ),
            key=lambda p: int(p.name),
        )
        if versions:
            return "savedmodel", versions[-1]
        if _is_tf1_checkpoint(path):
            return "tf1_checkpoint", path
        raise ModelLoadError(
            f"{path}: not a model folder; expected {SOURCES_HELP}"
        )
    if path.exists():
        raise ModelLoadError(
            f"{path}: unsupported model file; expected {SOURCES_HELP}"
        )
    if "/" not in str(source) and "\\" not in str(source):
        try:
            style = registry.find_style(str(source))
        except KeyError as e:
            raise ModelLoadError(str(e.args[0])) from None
        return "keras", pathlib.Path(style["path"])
    raise ModelLoadError(f"{source}: no such file or folder")


def check_sources(sources):
    """Resolve each source; a config's `validate` calls this so that a
    source naming nothing is a `ValueError` (one line) before TensorFlow.

    Raises:
        ValueError: the first source that `resolve_source` refuses.
    """
    try:
        for source in sources:
            resolve_source(source)
    except ModelLoadError as e:
        raise ValueError(str(e)) from None
