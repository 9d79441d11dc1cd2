"""The `uegan` command: stylize, list-styles, add-style, app.

    uegan stylize INPUTS... --out_dir=DIR [--style=NAME]
    uegan list-styles
    uegan add-style NAME SOURCE [--description=...] [--overwrite]
    uegan app [--host=127.0.0.1] [--port=7860] [--model=PATH ...]

Each subcommand's `--help` lists its flags.
"""

import sys

USAGE = __doc__.split("\n\n")[1]


def _quiet_tensorflow_import(argv=()):
    """Import TensorFlow without its start-up lines (unless --verbose)."""
    from uegan_tf.quiet import quiet_tensorflow
    from uegan_tf.quiet import wants_verbose

    quiet_tensorflow(wants_verbose(list(argv)))


def list_styles_main(argv):
    if argv:
        if argv[0] in ("-h", "-?", "--help", "--helpfull"):
            print("usage:\n  uegan list-styles\n\nLists the installed styles.")
            return 0
        print(
            f"error: list-styles takes no arguments, got {argv}",
            file=sys.stderr,
        )
        return 2
    from uegan_tf import registry

    styles = registry.list_styles()
    if not styles:
        print(
            "no styles installed; import one with "
            "tools/import_animeganv2.py or add a trained one with "
            "`uegan add-style NAME WORKDIR`"
        )
        return 0
    width = max(len(s["name"]) for s in styles)
    for s in styles:
        default = " (default)" if s["name"] == registry.DEFAULT_STYLE else ""
        print(
            f"{s['name']:<{width}}  {s['kind']:<9}  {s['origin']:<7}  "
            f"{s['description']}{default}"
        )
        print(f"{'':<{width}}  {s['path']}")
    return 0


ADD_STYLE_USAGE = """\
  uegan add-style NAME SOURCE [--step=N] [--description=TEXT] [--overwrite]

Register a trained generator (SOURCE: a training work dir or .keras file)
as the named style NAME in $UEGAN_HOME/styles."""


def add_style_main(argv, flag_values=None):
    """`uegan add-style NAME SOURCE ...` (`argv`: the arguments after
    add-style); returns the exit code."""
    from uegan_tf import flags as uflags
    from uegan_tf.config import AddStyleConfig

    argv = ["uegan add-style", *argv]
    if uflags.wants_help(argv):
        print(uflags.command_help(AddStyleConfig, ADD_STYLE_USAGE))
        return 0
    flag_values = uflags.FLAGS if flag_values is None else flag_values
    try:
        rest = uflags.parse_command(AddStyleConfig, argv, flag_values)
        if len(rest) != 3:
            raise ValueError(
                f"expected NAME SOURCE, got {len(rest) - 1} argument(s) "
                f"{rest[1:]} (see uegan add-style --help)"
            )
        cfg = uflags.config_from_flags(
            AddStyleConfig, flag_values, name=rest[1], source=rest[2]
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from uegan_tf import registry
    from uegan_tf.inference.sources import ModelLoadError
    from uegan_tf.inference.sources import resolve_source

    try:
        resolve_source(cfg.source)  # before TensorFlow's import (seconds)
        _quiet_tensorflow_import(["--verbose"] if cfg.verbose else [])
        from uegan_tf.inference.stylizer import load_generator

        generator, info = load_generator(cfg.source, cfg.step)
        path = registry.add_style(
            cfg.name,
            generator,
            "trained",
            description=cfg.description or f"trained: {info['path']}",
            source=info["path"],
            overwrite=cfg.overwrite,
            extra={"step": info.get("step")},
        )
    except (ModelLoadError, ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"added style {cfg.name!r}: {path}")
    return 0


def main(argv=None, flag_values=None):
    """The `uegan` command; returns the exit code.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the absl flag registry stylize and add-style parse
            into (default: the global one; tests pass a fresh one).
    """
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if len(argv) >= 2 else 2
    command, rest = argv[1], argv[2:]
    if command == "stylize":
        # stylize.cli quiets TensorFlow itself (and not for --help).
        from uegan_tf.inference import stylize

        return stylize.cli(["uegan stylize", *rest], flag_values)
    if command == "list-styles":
        return list_styles_main(rest)
    if command == "add-style":
        return add_style_main(rest, flag_values)
    if command == "app":
        # app.cli quiets TensorFlow itself (after parsing: not for --help).
        from uegan_tf import app as app_lib

        return app_lib.cli(["uegan app", *rest])
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
