"""`python -m uegan_tf.app`: the same command as `uegan app`."""

import sys

from uegan_tf.app.command import cli

sys.exit(cli(["python -m uegan_tf.app", *sys.argv[1:]]))
