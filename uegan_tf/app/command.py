"""The `uegan app` command: options -> `AppConfig`, then serve the page.

uegan app [--host=127.0.0.1] [--port=7860] [--model=PATH ...] ...
python -m uegan_tf.app ...                   # the same command
"""

import argparse
import signal
import sys

from uegan_tf.app.page import build_app
from uegan_tf.app.service import AppConfig
from uegan_tf.app.service import UploadQuota
from uegan_tf.app.service import parse_size
from uegan_tf.app.service import private_temp_root
from uegan_tf.app.service import remove_temp_root
from uegan_tf.precision import INFERENCE_PRECISIONS
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


def parse_args(argv):
    """`[prog, *args]` -> `(AppConfig, styles or None)`.

    Raises:
        ValueError: a bad option value.
        SystemExit: `--help` or an unknown option (from argparse).
    """
    from uegan_tf.image_io import parse_memory

    d = AppConfig()
    parser = argparse.ArgumentParser(
        prog=argv[0] if argv else "uegan app",
        description="Stylize photos and videos in the browser (Gradio).",
    )
    parser.add_argument(
        "--host",
        default=d.host,
        help="interface to listen on (default: loopback)",
    )
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="PATH or NAME=PATH of a model (style name, .keras, work dir, "
        "SavedModel); repeatable or comma-separated. Default: the "
        "installed styles",
    )
    parser.add_argument(
        "--max_file_size",
        default="25mb",
        help="largest upload, e.g. 25mb (default: 25mb)",
    )
    parser.add_argument(
        "--max_video_seconds", type=float, default=d.max_video_seconds
    )
    parser.add_argument(
        "--max_user_disk",
        default="200mb",
        help="disk one user's kept uploads and results may take "
        "(default: 200mb); their oldest results make room first",
    )
    parser.add_argument(
        "--max_megapixels",
        type=float,
        default=d.max_pixels / 1e6,
        help="refuse photos with more pixels",
    )
    parser.add_argument(
        "--max_side",
        type=int,
        default=d.max_side,
        help="downscale longer photos/frames (0: never)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=d.concurrency,
        help="requests stylized at once",
    )
    parser.add_argument(
        "--queue_size",
        type=int,
        default=d.queue_size,
        help="requests allowed to wait",
    )
    parser.add_argument(
        "--max_memory",
        default="1.5G",
        help="peak memory budget of stylizing, e.g. 1.5G or 800M (default: "
        "1.5G); larger photos are tiled to fit it",
    )
    parser.add_argument(
        "--precision",
        choices=INFERENCE_PRECISIONS,
        default=d.precision,
        help="inference precision; bf16 needs a CPU with AVX512_BF16/AMX "
        "(elsewhere a note and fp32)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up log",
    )
    parser.add_argument(
        "--cache_size",
        type=int,
        default=d.cache_size,
        help="loaded models kept in memory",
    )
    args = parser.parse_args(argv[1:])
    config = AppConfig(
        host=args.host,
        port=args.port,
        models=tuple(args.model),
        max_file_size=parse_size(args.max_file_size),
        max_user_bytes=parse_size(args.max_user_disk),
        max_video_seconds=args.max_video_seconds,
        max_pixels=round(args.max_megapixels * 1e6),
        max_side=args.max_side,
        concurrency=args.concurrency,
        queue_size=args.queue_size,
        cache_size=args.cache_size,
        max_memory=parse_memory(args.max_memory),
        precision=args.precision,
    ).validate()
    styles = parse_model_specs(config.models) if config.models else None
    return config, styles


def cli(argv=None):
    """Entry point of `uegan app` / `python -m uegan_tf.app`.

    Returns:
        The exit code: 0 after a normal shutdown, 2 for usage errors.
    """
    argv = list(sys.argv if argv is None else argv)
    try:
        config, styles = parse_args(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from uegan_tf.quiet import quiet_tensorflow

    quiet_tensorflow("--verbose" in argv)
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
