"""Run the bench scripts one after another and write one report (by hand).

    python bench/run_all.py [--only=inference,precision] \
        [--extra=inference:--sizes=256] [--out_dir=bench/results/all]

Each script runs in its own process, never two at once (this machine has 2
cores: overlapping benchmarks would time each other). Each writes its JSON
into `--out_dir`; this script then writes

- `all.json`: the machine (`benchlib.machine()`), and per script the
  command, exit code, wall seconds and the script's own JSON;
- `all.md`: a heading with the CPU and date, then per script the Markdown
  tables it printed (or why it failed).

Quote numbers from one report as ratios within it: absolute times change
with the CPU model between sessions.
"""

import json
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

BENCH = pathlib.Path(__file__).resolve().parent

# name -> (script, arguments before --out). The order is the report's.
SCRIPTS = {
    "train": ("bench_train.py", []),
    "pipeline": ("bench_pipeline.py", []),
    "inference": ("bench_inference.py", []),
    "precision": ("bench_precision.py", []),
    "ops": ("bench_op_profile.py", []),
    "memory": ("bench_memory.py", ["budget"]),
    "video": ("bench_video.py", []),
    "beam": ("bench_beam.py", []),
}


def define_flags():
    """This script's flags (defined when it runs, not when imported: the
    tests import it into a process whose absl FLAGS has --out_dir)."""
    flags.DEFINE_list("only", list(SCRIPTS), "Scripts to run, in order.")
    flags.DEFINE_multi_string(
        "extra", [], "NAME:ARG, an extra argument for one script (repeatable)."
    )
    flags.DEFINE_string(
        "out_dir", "bench/results/all", "Where the JSONs and all.md go."
    )


def markdown_tables(text):
    """The Markdown tables in a script's output: runs of `|` lines."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables


def report_markdown(machine, runs):
    """`all.md`: the machine, then each script's tables or its failure.

    Args:
        machine: `benchlib.machine()`.
        runs: name -> {"command", "returncode", "seconds", "tables"}.
    """
    lines = [
        f"# Benchmarks: {machine['cpu']}, {machine['cpu_count']} cores, "
        f"{machine['date']}",
        "",
        f"bfloat16 native: {machine['native_bf16']}; load average at "
        f"the start: {machine['load_average'][0]:.2f}. Compare within "
        "this report only.",
    ]
    if machine.get("isa"):  # reports before 2026-12-07 lack it
        lines += [
            "",
            f"CPU family/model {machine.get('cpu_family_model')}; "
            f"instruction sets: {' '.join(machine['isa'])}.",
        ]
    for name, run in runs.items():
        lines += [
            "",
            f"## {name}",
            "",
            f"`{run['command']}` ({run['seconds']:.0f} s)",
            "",
        ]
        if run["returncode"] != 0:
            lines.append(f"**failed** (exit {run['returncode']})")
        elif not run["tables"]:
            lines.append("(no table printed)")
        else:
            lines.append("\n\n".join(run["tables"]))
    return "\n".join(lines) + "\n"


def parse_extra(items, names):
    """`["inference:--sizes=256", ...]` -> {"inference": ["--sizes=256"]}."""
    extra = {name: [] for name in names}
    for item in items:
        name, sep, arg = item.partition(":")
        if not sep or name not in extra:
            raise ValueError(
                f"--extra wants NAME:ARG for one of "
                f"{','.join(names)}, got {item!r}"
            )
        extra[name].append(arg)
    return extra


def main(argv):
    del argv
    unknown = [n for n in flags.FLAGS.only if n not in SCRIPTS]
    if unknown:
        sys.exit(
            f"unknown bench script(s): {','.join(unknown)}; "
            f"known: {','.join(SCRIPTS)}"
        )
    try:
        extra = parse_extra(flags.FLAGS.extra, flags.FLAGS.only)
    except ValueError as e:
        sys.exit(str(e))
    out_dir = pathlib.Path(flags.FLAGS.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = benchlib.machine()
    runs, results = {}, {}
    for name in flags.FLAGS.only:
        script, args = SCRIPTS[name]
        out = out_dir / f"{name}.json"
        cmd = [
            sys.executable,
            str(BENCH / script),
            *args,
            f"--out={out}",
            *extra[name],
        ]
        shown = " ".join(["python", f"bench/{script}", *cmd[2:]])
        print(f"== {name}: {shown}", flush=True)
        start = time.perf_counter()
        # Output is shown as it comes and kept for the tables.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        kept = []
        for line in proc.stdout:
            sys.stdout.write(line)
            kept.append(line)
        proc.wait()
        runs[name] = {
            "command": shown,
            "returncode": proc.returncode,
            "seconds": time.perf_counter() - start,
            "tables": markdown_tables("".join(kept)),
        }
        if out.exists():
            results[name] = json.loads(out.read_text())
    (out_dir / "all.md").write_text(report_markdown(machine, runs))
    benchlib.write_json(
        out_dir / "all.json",
        {"runs": {n: {**r, "result": results.get(n)} for n, r in runs.items()}},
    )
    print(f"wrote {out_dir / 'all.md'}")
    failed = [n for n, r in runs.items() if r["returncode"] != 0]
    if failed:
        sys.exit(f"failed: {','.join(failed)}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
