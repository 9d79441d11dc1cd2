"""Train UE-AnimeGANv2 (or plain AnimeGANv2 with --nounet --edge_weight=0).

    python -m uegan_tf.train --flagfile=configs/paprika.flags \
        --records_dir=data/paprika --workdir=runs/paprika

Run from the repository root (nested flagfile paths are relative to it).
The run resumes automatically from --workdir. This file only parses flags:
the work is in `uegan_tf/train/trainer.py`.
"""

import sys

from absl import app
from absl import flags
from absl import logging


def main(argv, flag_values=flags.FLAGS):
    from uegan_tf import flags as uflags
    from uegan_tf.data.schema import read_manifest
    from uegan_tf.quiet import quiet_tensorflow

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    # Flags and the records folder are checked before TensorFlow starts
    # (seconds): a typo is refused at once.
    try:
        cfg = uflags.train_config_from_flags(flag_values)
        if not flag_values.dry_run:
            read_manifest(cfg.data.records_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # (--verbose is defined by `run`, not by callers' own registries.)
    quiet_tensorflow("verbose" in flag_values and flag_values.verbose)
    import tensorflow as tf

    from uegan_tf.fileutil import write_text_atomic
    from uegan_tf.train import trainer as trainer_lib

    # TF's INFO lines (strategy devices, saver timings) drown the progress
    # bar; warnings and errors still show.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    if flag_values.dry_run:
        print(trainer_lib.config_summary(cfg))
        return 0
    from uegan_tf.data.pipeline import CorruptRecordsError

    try:
        trainer = trainer_lib.Trainer(cfg)
    except CorruptRecordsError as e:
        # The data is damaged, not the command: a failed input.
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The replayable flags of this invocation (`--flagfile=WORKDIR/flags.txt`).
    # (A non-chief worker writes it to its temporary folder.)
    trainer.output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        trainer.output_dir / "flags.txt", flag_values.flags_into_string()
    )
    try:
        result = trainer.train()
    except trainer_lib.TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except trainer_lib.TrainingDivergedError as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
    except (tf.errors.UnavailableError, tf.errors.CancelledError) as e:
        # Multi-worker: a peer died or became unreachable. The collective
        # fails when its gRPC channel breaks (12 s after a kill -9 in
        # tests/test_multiworker.py) or, at the latest, when
        # MultiWorkerMirroredStrategy's health check (a ping to every peer
        # every 30 s) aborts the pending collectives: never a hang.
        from uegan_tf.errors import describe

        print(
            "error: lost contact with another training worker "
            f"({describe(e)}). Training cannot continue "
            "without it: restart every worker with the same command to "
            f"resume from the chief's last checkpoint in "
            f"{cfg.workdir}/checkpoints.",
            file=sys.stderr,
        )
        return 1
    except tf.errors.DataLossError as e:
        # The shards were whole at start (Trainer checks them) but one
        # became unreadable since; which one, TF does not say.
        from uegan_tf.data.pipeline import remake_hint
        from uegan_tf.errors import first_line

        reason = first_line(e, "")
        print(
            f"error: a records file in {cfg.data.records_dir} became "
            f"unreadable during training ({reason}); "
            f"{remake_hint(cfg.data.records_dir)}",
            file=sys.stderr,
        )
        return 1
    print(
        f"done: step {result['step']} ({result['phase']} phase); "
        f"checkpoints in {cfg.workdir}/checkpoints"
    )
    return 0


def run():
    from uegan_tf import flags as uflags
    from uegan_tf.quiet import define_verbose_flag

    uflags.define_train_flags()
    define_verbose_flag()
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    run()
