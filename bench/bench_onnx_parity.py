"""Our ONNX export vs the PyTorch port's, on ONNX Runtime (run by hand).

    pip install torch==2.13.0   # bench-only; the package never imports it
    python bench/bench_onnx_parity.py [--sizes=512,1024] [--repeats=7] \
        [--warmup=1] [--threads=2] [--seed=0] [--profile] \
        [--out=bench/results/onnx_parity.json]

The same network twice, from the same weights (issue 15;
`docs/environment.md#onnx`):

1. a seeded random state dict of the PyTorch port's plain AnimeGANv2
   generator (`bench/torch_animegan.py`, our own module with the port's
   structure and parameter names) is saved as a `.pt`;
2. our importer reads it without torch (`read_pytorch_checkpoint`,
   `convert_pytorch_weights`, align-corners upsampling, epsilon 1e-5);
3. torch exports its module (`torch.onnx.export`, TorchScript exporter,
   opset 17, dynamic H and W, NCHW) and we export the Keras generator
   (`write_saved_model`, then `convert_to_onnx`: NHWC, our rewrites) and
   once more without the rewrites (`fuse=False`, tf2onnx's graph: the
   "before");
4. ONNX Runtime runs each (CPU provider, `--threads` intra-op threads,
   graph optimisation level ALL) **interleaved** on a photo at each size:
   rounds of one call per model (order reversed every other round),
   median per model and the median over rounds of each call's ratio to
   the port's call (plus min and process-CPU ratios in the JSON). Each
   input is given in its model's own layout (NCHW for the port, outside
   the timed call).

PSNRs (float outputs in [-1, 1], peak 2): Keras vs torch (the import),
our ONNX vs Keras and the port's ONNX vs torch (each export vs its source
framework). `--profile` adds ORT's per-node profile summed per op type.
The graph table counts Transpose, normalisation, Pad, Slice and Concat
nodes. Prints Markdown tables and writes JSON (with the machine and its
load: only the ratios within one run mean anything).
"""

import collections
import json
import logging
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

_SIZES = flags.DEFINE_list("sizes", ["512", "1024"], "Square sizes.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed rounds per size.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed calls per model.")
_THREADS = flags.DEFINE_integer("threads", 2, "ORT intra-op threads.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
_PROFILE = flags.DEFINE_bool(
    "profile", False, "Also profile each model per op type (ORT)."
)
_OUT = flags.DEFINE_string(
    "out", "bench/results/onnx_parity.json", "JSON output."
)

# model -> what it is. "port": torch's export; "ours": the shipped export;
# "ours_tf2onnx": tf2onnx's graph (+ split_reductions), before the fix.
MODELS = {
    "port": "PyTorch port, torch.onnx.export (NCHW)",
    "ours": "uegan_tf convert_to_onnx (NHWC)",
    "ours_tf2onnx": "uegan_tf convert_to_onnx(fuse=False) (NHWC)",
}
# Node kinds the graph table counts.
NORM_OPS = (
    "InstanceNormalization",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "ReduceMean",
)
COUNTED_OPS = ("Transpose", *NORM_OPS, "Pad", "Slice", "Concat")


def session(content, threads, profile_prefix=None):
    """An ORT CPU session, level ALL, `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    return ort.InferenceSession(
        content, options, providers=["CPUExecutionProvider"]
    )


def op_counts(content):
    """`{op type: count}` of an ONNX model's main graph."""
    import onnx

    model = onnx.load_from_string(content)
    return dict(collections.Counter(n.op_type for n in model.graph.node))


def profile_ops(contents, inputs, threads, prefix, runs=3):
    """ORT's per-node kernel times, summed per op type, ms per call.

    Each model gets a profiling session; after one uncounted call each,
    `runs` rounds of one call per model (interleaved, as the timing).

    Returns:
        `{model: {op type: ms}}`, slowest op first.
    """
    sessions = {
        name: session(content, threads, f"{prefix}_{name}")
        for name, content in contents.items()
    }
    for name, sess in sessions.items():  # allocations: not counted
        sess.run(None, inputs[name])
    for _ in range(runs):
        for name, sess in sessions.items():
            sess.run(None, inputs[name])
    profiles = {}
    for name, sess in sessions.items():
        path = pathlib.Path(sess.end_profiling())
        events = json.loads(path.read_text())
        path.unlink()
        calls = [e for e in events if e.get("name") == "model_run"]
        start_us = calls[1]["ts"]  # skip the first call's events
        totals = collections.defaultdict(float)
        for event in events:
            if (
                event.get("cat") == "Node"
                and event["name"].endswith("_kernel_time")
                and event["ts"] >= start_us
            ):
                op = event["args"]["op_name"]
                totals[op] += event["dur"] / 1e3 / runs
        profiles[name] = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    return profiles


def time_interleaved(sessions, inputs):
    """Wall and CPU time per call, `--repeats` interleaved rounds.

    A busy machine (a training job and others share the 2 cores) moves
    every call's time by +-25 %: the ratio to the port's call of the same
    round (seconds apart) varies much less than the medians. Returns
    per model: median and min wall time, the median of those per-round
    ratios ("vs_port") and the ratio of median process CPU times.
    """
    names = list(sessions)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for name in names:
        for _ in range(_WARMUP.value):
            sessions[name].run(None, inputs[name])
    for r in range(_REPEATS.value):
        for name in names if r % 2 == 0 else names[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            sessions[name].run(None, inputs[name])
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)

    def median_ratio(a, b):
        return statistics.median(x / y for x, y in zip(a, b))

    cpu_port = statistics.median(cpu["port"])
    return {
        "median_ms": {
            n: round(statistics.median(t) * 1e3, 1) for n, t in wall.items()
        },
        "min_ms": {n: round(min(t) * 1e3, 1) for n, t in wall.items()},
        "vs_port": {
            n: round(median_ratio(t, wall["port"]), 3) for n, t in wall.items()
        },
        "cpu_vs_port": {
            n: round(statistics.median(t) / cpu_port, 3) for n, t in cpu.items()
        },
        "times_ms": {
            n: [round(v * 1e3, 1) for v in t] for n, t in wall.items()
        },
        "cpu_ms": {n: [round(v * 1e3, 1) for v in t] for n, t in cpu.items()},
    }


def main(argv):
    del argv
    import keras
    import tensorflow as tf
    import torch
    import torch_animegan

    from uegan_tf import export as uexport
    from uegan_tf.image_ops import to_unit_range_np
    from uegan_tf.importers import convert_pytorch_weights
    from uegan_tf.importers import read_pytorch_checkpoint

    tf.get_logger().setLevel("ERROR")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    torch.set_num_threads(_THREADS.value)
    sizes = [int(s) for s in _SIZES.value]
    results = {"sizes": {}, "graphs": {}, "profiles": {}}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        # 1-2. One state dict, two frameworks.
        pt_file = tmp / "animegan2_random.pt"
        torch.save(torch_animegan.random_state_dict(_SEED.value), pt_file)
        torch_model = torch_animegan.Generator()
        torch_model.load_state_dict(torch.load(pt_file, weights_only=True))
        torch_model.eval()
        generator = convert_pytorch_weights(
            read_pytorch_checkpoint(str(pt_file)), upsample="align_corners"
        )
        print(f"Keras generator: {generator.count_params():,} parameters")

        # 3. The three ONNX models.
        probe = torch.zeros(1, 3, 64, 64)
        port_file = tmp / "port.onnx"
        torch.onnx.export(
            torch_model,
            (probe,),
            str(port_file),
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["stylized"],
            dynamic_axes={
                "image": {2: "height", 3: "width"},
                "stylized": {2: "height", 3: "width"},
            },
        )
        saved = uexport.write_saved_model(
            generator, tmp / "saved", warmup_image=False
        )
        contents = {
            "port": port_file.read_bytes(),
            "ours": uexport.convert_to_onnx(saved),
            "ours_tf2onnx": uexport.convert_to_onnx(saved, fuse=False),
        }
        for name, content in contents.items():
            counts = op_counts(content)
            results["graphs"][name] = {
                "bytes": len(content),
                "nodes": sum(counts.values()),
                "ops": counts,
            }
        sessions = {
            name: session(content, _THREADS.value)
            for name, content in contents.items()
        }

        for size in sizes:
            photo = uexport.sample_photos((size, size), ("astronaut",))
            x = to_unit_range_np(np.stack(photo)).astype(np.float32)
            x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            inputs = {
                name: {"image": x_nchw if name == "port" else x}
                for name in sessions
            }
            outputs = {
                name: sess.run(None, inputs[name])[0]
                for name, sess in sessions.items()
            }
            outputs["port"] = outputs["port"].transpose(0, 2, 3, 1)
            keras_out = generator(x, training=False).numpy()
            with torch.no_grad():
                torch_out = torch_model(torch.from_numpy(x_nchw)).numpy()
            torch_out = torch_out.transpose(0, 2, 3, 1)
            psnrs = {
                "keras_vs_torch": uexport.psnr(keras_out, torch_out),
                "ours_vs_keras": uexport.psnr(outputs["ours"], keras_out),
                "ours_tf2onnx_vs_keras": uexport.psnr(
                    outputs["ours_tf2onnx"], keras_out
                ),
                "port_vs_torch": uexport.psnr(outputs["port"], torch_out),
                "port_vs_keras": uexport.psnr(outputs["port"], keras_out),
            }
            del keras_out, torch_out, outputs
            # 4. Interleaved timing: one call per model per round, the
            # order reversed every other round (no model always runs
            # right after the same one).
            row = time_interleaved(sessions, inputs)
            row["psnr_db"] = {k: round(v, 2) for k, v in psnrs.items()}
            results["sizes"][str(size)] = row
            print(
                f"{size}²: "
                + ", ".join(
                    f"{n} {row['median_ms'][n]:.0f} ms "
                    f"({row['vs_port'][n]:.3f}x, CPU "
                    f"{row['cpu_vs_port'][n]:.3f}x)"
                    for n in sessions
                )
                + "; PSNR "
                + ", ".join(f"{k} {v:.1f}" for k, v in psnrs.items()),
                flush=True,
            )
            if _PROFILE.value:
                results["profiles"][str(size)] = profile_ops(
                    contents, inputs, _THREADS.value, tmp / "profile"
                )

    print_tables(results, sizes)
    benchlib.write_json(
        _OUT.value,
        {
            "keras": keras.__version__,
            "torch": torch.__version__,
            "onnxruntime": _ort_version(),
            "models": MODELS,
            "seed": _SEED.value,
            "threads": _THREADS.value,
            "warmup": _WARMUP.value,
            "repeats": _REPEATS.value,
            "interleaved": True,
            **results,
        },
    )


def _ort_version():
    import onnxruntime

    return onnxruntime.__version__


def print_tables(results, sizes):
    names = list(MODELS)
    source = {
        "port": "port_vs_torch",
        "ours": "ours_vs_keras",
        "ours_tf2onnx": "ours_tf2onnx_vs_keras",
    }
    rows = []
    for name in names:
        cells = []
        for s in sizes:
            row = results["sizes"][str(s)]
            cells.append(
                f"{row['median_ms'][name]:.0f} ({row['vs_port'][name]:.3f}x; "
                f"{row['cpu_vs_port'][name]:.3f}x)"
            )
        for s in sizes:
            cells.append(
                f"{results['sizes'][str(s)]['psnr_db'][source[name]]:.1f}"
            )
        rows.append([name, *cells])
    header = [
        "model",
        *(f"{s}² ms (vs port; CPU vs port)" for s in sizes),
        *(f"{s}² PSNR vs source (dB)" for s in sizes),
    ]
    print()
    print(benchlib.markdown_table(header, rows))
    print()
    print(
        benchlib.markdown_table(
            ["model", "nodes", *COUNTED_OPS],
            [
                [
                    name,
                    results["graphs"][name]["nodes"],
                    *(
                        results["graphs"][name]["ops"].get(op, 0)
                        for op in COUNTED_OPS
                    ),
                ]
                for name in names
            ],
        )
    )
    for size, profiles in results["profiles"].items():
        ops = sorted(
            {op for p in profiles.values() for op in p},
            key=lambda op: -max(p.get(op, 0) for p in profiles.values()),
        )
        rows = [
            [op, *(f"{profiles[n].get(op, 0):.0f}" for n in names)]
            for op in ops
            if max(p.get(op, 0) for p in profiles.values()) >= 1
        ]
        rows.append(
            ["total", *(f"{sum(profiles[n].values()):.0f}" for n in names)]
        )
        print(f"\nORT profile at {size}², ms per call (kernel time):\n")
        print(benchlib.markdown_table(["op", *names], rows))


if __name__ == "__main__":
    app.run(main)
