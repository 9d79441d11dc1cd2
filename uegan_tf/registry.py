"""Named styles: bundled with the package, converted, or trained locally.

A style is a folder holding `generator.keras` (the Keras generator with its
configuration: U-Net or not, resize mode, layer-norm epsilon, so the right
numerics come with the weights), an optional `style.json` (kind,
description, source, licence) and an optional `MODEL_CARD.md`.

Where styles live:

- bundled: `uegan_tf/styles/<name>/` inside the package;
- user styles: `$UEGAN_HOME/styles/<name>/` (default `~/.uegan/styles`),
  written by `tools/import_animeganv2.py` ("converted") and
  `uegan add-style` ("trained").
"""

import json
import os
import pathlib
import shutil

from uegan_tf.fileutil import atomic_dir

BUNDLED_DIR = pathlib.Path(__file__).resolve().parent / "styles"
GENERATOR_FILE = "generator.keras"
STYLE_FILE = "style.json"
DEFAULT_STYLE = "anime"


def user_styles_dir():
    """`$UEGAN_HOME/styles` or `~/.uegan/styles`."""
    home = os.environ.get("UEGAN_HOME") or os.path.join(
        os.path.expanduser("~"), ".uegan"
    )
    return pathlib.Path(home) / "styles"


def _describe(folder, origin):
    meta = {}
    meta_path = folder / STYLE_FILE
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
    return {
        "name": folder.name,
        "origin": origin,
        "kind": meta.get(
            "kind", "bundled" if origin == "bundled" else "converted"
        ),
        "description": meta.get("description", ""),
        "path": str(folder / GENERATOR_FILE),
        "meta": meta,
    }


def list_styles():
    """Every available style; user styles shadow bundled ones of that name.

    Returns:
        list of dicts with "name", "origin" ("bundled" | "user"), "kind"
        ("bundled" | "converted" | "trained"), "description", "path",
        "meta", sorted by name.
    """
    styles = {}
    for origin, root in (("bundled", BUNDLED_DIR), ("user", user_styles_dir())):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / GENERATOR_FILE).exists():
                styles[folder.name] = _describe(folder, origin)
    return [styles[k] for k in sorted(styles)]


def find_style(name):
    """The style dict named `name`.

    Raises:
        KeyError: unknown style, with the available names.
    """
    for style in list_styles():
        if style["name"] == name:
            return style
    names = ", ".join(s["name"] for s in list_styles()) or "none"
    raise KeyError(f"unknown style {name!r} (available: {names})")


def add_style(
    name,
    generator,
    kind,
    description="",
    source="",
    licence="",
    overwrite=False,
    extra=None,
):
    """Save a Keras generator as a user style.

    Args:
        name: style name (a folder name: letters, digits, -, _).
        generator: a built `uegan_tf.models.Generator`.
        kind: "converted" or "trained".
        description, source, licence: shown by `uegan list-styles`.
        overwrite: replace an existing user style of that name.
        extra: more metadata for `style.json`.

    Returns:
        The style folder.
    """
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(
            f"style name must use letters, digits, '-' or '_': {name!r}"
        )
    root = user_styles_dir()
    final = root / name
    if final.exists():
        if not overwrite:
            raise FileExistsError(
                f"style {name!r} exists ({final}); pass overwrite"
            )
        shutil.rmtree(final)
    meta = {
        "kind": kind,
        "description": description,
        "source": source,
        "licence": licence,
        **(extra or {}),
    }
    with atomic_dir(final) as tmp:
        generator.save(pathlib.Path(tmp) / GENERATOR_FILE)
        (pathlib.Path(tmp) / STYLE_FILE).write_text(json.dumps(meta, indent=2))
    return final


def _style_name(source):
    path = pathlib.Path(source)
    if path.name == "generator.keras":  # a style folder's file
        return path.parent.name
    return path.stem if path.suffix else path.name


def parse_model_specs(values):
    """`NAME=PATH` model specs -> styles, in the given order.

    The one parser of model lists: `uegan app --model` and
    `python -m uegan_tf.eval.evaluate --models`. A bare `PATH` is named
    after its style folder (`.../NAME/generator.keras`), file stem or
    folder name.

    Args:
        values: strings, each `PATH` or `NAME=PATH`, possibly several
            separated by commas.

    Returns:
        dict display name -> model source. A name taken twice gets a
        numeric suffix.
    """
    styles = {}
    for value in values:
        for spec in filter(None, (s.strip() for s in value.split(","))):
            name, sep, source = spec.partition("=")
            if not sep:
                name, source = _style_name(spec), spec
            name, base, n = name.strip() or "model", name.strip(), 2
            while name in styles:
                name, n = f"{base}-{n}", n + 1
            styles[name] = source.strip()
    return styles
