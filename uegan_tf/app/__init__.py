"""The web app (Gradio): stylize photos and videos in the browser.

- `service.py`: `StylizeService` (requests, without any Gradio import),
  `StylizerCache`, `UploadQuota`, private temp dirs (its settings,
  `AppConfig`, are in `uegan_tf/config.py`);
- `page.py`: `build_app`, the Gradio layout;
- `command.py`: `uegan app` / `python -m uegan_tf.app` (`parse_args`, `cli`,
  `launch`).

The names below are re-exported so `from uegan_tf import app` is enough.
"""

from uegan_tf.app.command import cli
from uegan_tf.app.command import launch
from uegan_tf.app.command import parse_args
from uegan_tf.app.page import build_app
from uegan_tf.app.service import AppConfig
from uegan_tf.app.service import InputError
from uegan_tf.app.service import StylizerCache
from uegan_tf.app.service import StylizeService
from uegan_tf.app.service import UploadQuota
from uegan_tf.app.service import format_size
from uegan_tf.app.service import parse_size
from uegan_tf.app.service import private_temp_root
from uegan_tf.app.service import registry_styles
from uegan_tf.app.service import remove_temp_root
from uegan_tf.registry import parse_model_specs

__all__ = [
    "AppConfig",
    "InputError",
    "StylizeService",
    "StylizerCache",
    "UploadQuota",
    "build_app",
    "cli",
    "format_size",
    "launch",
    "parse_args",
    "parse_model_specs",
    "parse_size",
    "private_temp_root",
    "registry_styles",
    "remove_temp_root",
]
