"""Where the generator's time goes, per TensorFlow op (run by hand).

    python bench/bench_op_profile.py [--size=512] [--precisions=fp32,bf16] \
        [--checkpoint=SOURCE] [--rounds=3] [--out=bench/results/ops.json]

For each precision (`inference.with_precision`) the generator is traced at
a fixed `[1, S, S, 3]`, frozen, and run in a TF1 session with full tracing
(`RunOptions.FULL_TRACE`): the step stats give every kernel's run time, as
Grappler and oneDNN rewrote the graph (`_MklNativeConv2D`, ...). Prints one
table, op type by op type, with milliseconds per call (mean over
`--rounds` traced calls after 2 untraced ones), the share of the summed
kernel time and the kernel count, side by side per precision; writes JSON.
The sum of kernel times is close to the call's wall time: the ops run one
after another, each on both cores (`docs/environment.md#bfloat16-inference`).
"""

import collections
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import benchlib  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """This script's flags, defined when it runs (the tests import it)."""
    flags.DEFINE_integer("size", 512, "Square input size.")
    flags.DEFINE_list("precisions", ["fp32", "bf16"], "Precisions.")
    flags.DEFINE_string(
        "checkpoint", None, "Generator source; default: the bundled style."
    )
    flags.DEFINE_integer("rounds", 3, "Traced calls per precision.")
    flags.DEFINE_string("out", "bench/results/ops.json", "JSON output.")


def op_times(generator, size, rounds=3, seed=0):
    """Mean milliseconds per call of each op type of `generator` at size².

    Returns:
        `(times, counts)`: op type -> ms per call, op type -> kernels per
        call (the graph as TensorFlow runs it, after Grappler's rewrites).
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(
        lambda x: generator(x, training=False),
        input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)],
    )
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(
            frozen.graph.as_graph_def(), name=""
        )
    feed = {
        frozen.inputs[0].name: np.random.default_rng(seed)
        .uniform(-1, 1, (1, size, size, 3))
        .astype(np.float32)
    }
    fetch = frozen.outputs[0].name
    times, counts = collections.defaultdict(float), collections.Counter()
    with tf.compat.v1.Session(graph=graph) as sess:
        for _ in range(2):  # oneDNN primitive creation, allocator warm-up
            sess.run(fetch, feed)
        options = tf.compat.v1.RunOptions(
            trace_level=tf.compat.v1.RunOptions.FULL_TRACE
        )
        for _ in range(rounds):
            meta = tf.compat.v1.RunMetadata()
            sess.run(fetch, feed, options=options, run_metadata=meta)
            for device in meta.step_stats.dev_stats:
                for node in device.node_stats:
                    # timeline_label: "name = OpType(inputs...)"
                    label = node.timeline_label
                    op = (
                        label.split(" = ", 1)[1].split("(", 1)[0]
                        if " = " in label
                        else node.node_name
                    )
                    ms = (node.op_end_rel_micros - node.op_start_rel_micros)
                    times[op] += ms / 1e3 / rounds
                    counts[op] += 1
    return dict(times), {op: n // rounds for op, n in counts.items()}


def table(results, min_share=0.1):
    """Markdown rows of the op types above `min_share` % in any column."""
    precisions = list(results)
    totals = {p: sum(results[p]["ms"].values()) for p in precisions}
    ops = sorted(
        {op for p in precisions for op in results[p]["ms"]},
        key=lambda op: -max(results[p]["ms"].get(op, 0) for p in precisions),
    )
    rows = []
    for op in ops:
        shares = [
            100 * results[p]["ms"].get(op, 0) / totals[p] for p in precisions
        ]
        if max(shares) < min_share:
            continue
        row = [op]
        for p, share in zip(precisions, shares):
            ms = results[p]["ms"].get(op, 0)
            row.append(
                f"{ms:.1f} ({share:.1f} %, {results[p]['count'].get(op, 0)})"
            )
        rows.append(row)
    rows.append(["sum of kernel times"] + [f"{totals[p]:.0f}" for p in precisions])
    header = ["op"] + [f"{p} ms (share, kernels)" for p in precisions]
    return benchlib.markdown_table(header, rows)


def main(argv):
    del argv
    from uegan_tf.inference.stylizer import load_generator
    from uegan_tf.inference.stylizer import with_precision

    generator, _ = load_generator(FLAGS.checkpoint)
    results = {}
    for precision in FLAGS.precisions:
        # with_precision, not load_generator(precision=): the profile of
        # bf16 is wanted (and readable) even where it would be emulated.
        ms, count = op_times(
            with_precision(generator, precision), FLAGS.size, FLAGS.rounds
        )
        results[precision] = {"ms": ms, "count": count}
    print(f"\nper-op kernel time at {FLAGS.size}² (ms per call)\n")
    print(table(results))
    benchlib.write_json(
        FLAGS.out,
        {"size": FLAGS.size, "rounds": FLAGS.rounds, "results": results},
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
