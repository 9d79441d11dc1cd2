"""The `uegan app` command: flags -> `AppConfig`, then serve the page.

uegan app [--host=127.0.0.1] [--port=7860] [--model=PATH ...] ...
python -m uegan_tf.app ...                   # the same command

The flags are absl flags generated from `config.AppConfig` (one
definition per setting), parsed into a `FlagValues` of their own;
`--help` lists them, `--flagfile` works.
"""

import signal
import sys

from uegan_tf.app.page import build_app
from uegan_tf.app.service import AppConfig
from uegan_tf.app.service import UploadQuota
from uegan_tf.app.service import private_temp_root
from uegan_tf.app.service import remove_temp_root
from uegan_tf.registry import parse_model_specs


def launch(demo, config=None, **kwargs):
    """Start the server of `build_app` with the config's limits.

    Args:
        demo: the `Blocks` from `build_app`.
        config: the `AppConfig` (host, port, upload limit).
        **kwargs: more `Blocks.launch` arguments (e.g.
            `prevent_thread_lock=True` to return at once).

    Returns:
        What `Blocks.launch` returns: `(app, local_url, share_url)`.
    """
    config = config or AppConfig()
    options = dict(
        server_name=config.host,
        server_port=config.port,
        max_file_size=config.max_file_size,
        # No share tunnel and no server-side rendering (a Node process):
        # a local demo server only.
        share=False,
        ssr_mode=False,
        show_error=False,
    )
    from starlette.middleware import Middleware

    options["app_kwargs"] = {
        "middleware": [
            Middleware(
                UploadQuota,
                max_bytes=config.max_user_bytes,
                window=config.keep_outputs_seconds,
            )
        ]
    }
    options.update(kwargs)
    return demo.launch(**options)


USAGE = """\
  uegan app [--host=127.0.0.1] [--port=7860] [--model=[NAME=]PATH ...] ...
  python -m uegan_tf.app ...                   # the same command

Stylize photos and videos in the browser (Gradio)."""


def _parse(argv, flag_values):
    """`[prog, *args]` -> `(AppConfig, styles or None)`.

    Raises:
        ValueError: an unknown flag, a bad type, choice or value, or
            positional arguments (one line naming the flag).
    """
    from uegan_tf import flags as uflags

    config = uflags.parse_config(AppConfig, argv, flag_values)
    styles = parse_model_specs(config.models) if config.models else None
    return config, styles


def parse_args(argv, flag_values=None):
    """`[prog, *args]` -> `(AppConfig, styles or None)`.

    Args:
        argv: the command line, program name first.
        flag_values: the registry to parse into (default: a fresh one, so
            the app's flags never meet another binary's: stylize also has
            --model and --precision).

    Raises:
        ValueError: a bad flag or value (one line naming the flag).
        SystemExit: `--help` (code 0, after printing it).
    """
    from absl import flags

    from uegan_tf import flags as uflags

    if uflags.wants_help(argv):
        print(uflags.command_help(AppConfig, USAGE))
        raise SystemExit(0)
    return _parse(
        argv, flags.FlagValues() if flag_values is None else flag_values
    )


def cli(argv=None, flag_values=None):
    """Entry point of `uegan app` / `python -m uegan_tf.app`.

    Returns:
        The exit code: 0 after a normal shutdown or `--help`, 2 for usage
        errors.
    """
    argv = list(sys.argv if argv is None else argv)
    try:
        config, styles = parse_args(argv, flag_values)
    except SystemExit as e:  # --help
        return e.code
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # A --model that names nothing is a usage error now, not when a user
    # first picks it in the page (and before TensorFlow's import).
    from uegan_tf.inference.sources import ModelLoadError
    from uegan_tf.inference.sources import resolve_source

    try:
        for source in (styles or {}).values():
            resolve_source(source)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from uegan_tf.quiet import quiet_tensorflow

    quiet_tensorflow(config.verbose)
    root = private_temp_root()
    try:
        demo = build_app(styles, config, work_dir=root / "results")
    except ImportError as e:
        remove_temp_root(root)
        print(f"error: {e}", file=sys.stderr)
        return 2
    service = demo.uegan_service
    if service.styles:
        print(
            "styles: "
            + ", ".join(
                f"{name} ({source})" for name, source in service.styles.items()
            )
        )
    else:
        print(f"warning: {service.no_models_message()}", file=sys.stderr)
    # SIGTERM (systemd, docker stop) ends the server like Ctrl-C, so that
    # the uploads and results are deleted below instead of staying behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        launch(demo, config)
    except OSError as e:  # port in use, bad host
        print(f"error: cannot start the server: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C while Gradio is still starting up (once it serves, its own
        # loop handles Ctrl-C and returns normally).
        demo.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_temp_root(root)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
