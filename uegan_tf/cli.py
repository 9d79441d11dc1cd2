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


def add_style_main(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="uegan add-style",
        description="Register a trained generator (work dir or .keras file) "
        "as a named style in $UEGAN_HOME/styles.",
    )
    parser.add_argument("name")
    parser.add_argument("source", help="training work dir or .keras file")
    parser.add_argument("--step", type=int, default=None)
    parser.add_argument("--description", default="")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's log"
    )
    args = parser.parse_args(argv)
    _quiet_tensorflow_import(["--verbose"] if args.verbose else [])
    from uegan_tf import registry
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import load_generator

    try:
        generator, info = load_generator(args.source, args.step)
        path = registry.add_style(
            args.name,
            generator,
            "trained",
            description=args.description or f"trained: {info['path']}",
            source=info["path"],
            overwrite=args.overwrite,
            extra={"step": info.get("step")},
        )
    except (ModelLoadError, ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"added style {args.name!r}: {path}")
    return 0


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if len(argv) >= 2 else 2
    command, rest = argv[1], argv[2:]
    if command == "stylize":
        # stylize.cli quiets TensorFlow itself (and not for --help).
        from uegan_tf.inference import stylize

        stylize.cli(["uegan stylize", *rest])
        return 0
    if command == "list-styles":
        return list_styles_main(rest)
    if command == "add-style":
        return add_style_main(rest)
    if command == "app":
        # app.cli quiets TensorFlow itself (after parsing: not for --help).
        from uegan_tf import app as app_lib

        return app_lib.cli(["uegan app", *rest])
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
