"""Multi-worker training for real: two worker processes on 127.0.0.1.

Each worker is its own TensorFlow runtime with one CPU device, joined by
`TF_CONFIG` into a `MultiWorkerMirroredStrategy` (gRPC collectives), and
runs the real command line (`python -m uegan_tf.train`, smoke config).
"""

import glob
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO

from uegan_tf.testing import write_fake_records

# The real CLI, plus a dump of the generator weights after `train()` when
# UEGAN_DUMP_WEIGHTS names a file (to compare the workers' weights; the
# non-chief's own outputs are deleted when it finishes).
_DRIVER = """
import os, sys
import numpy as np
from uegan_tf.train import trainer as T
_train = T.Trainer.train
def train(self):
    out = _train(self)
    dump = os.environ.get("UEGAN_DUMP_WEIGHTS")
    if dump:
        np.savez(dump, *[w.numpy() for w in self.generator.weights])
    return out
T.Trainer.train = train
from uegan_tf.train.__main__ import run
sys.argv[0] = "train"
run()
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_fake_records(
        tmp_path_factory.mktemp("data"), n_photo=6, n_style=4, size=40
    )


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_workers(records, workdir, dump_dir, *extra):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            UEGAN_DUMP_WEIGHTS=str(dump_dir / f"worker{index}.npz"),
            CUDA_VISIBLE_DEVICES="",
        )
        cmd = [
            sys.executable,
            "-c",
            _DRIVER,
            "--flagfile=configs/smoke.flags",
            f"--records_dir={records}",
            f"--val_dir={records}",
            f"--workdir={workdir}",
            *extra,
        ]
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _finish(procs, timeout=600):
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        outs.append((proc.returncode, out, err))
    return outs


def _metric_steps(workdir):
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass
    return steps


@pytest.mark.slow
def test_two_workers_train_save_on_chief_and_resume(tmp_path, records):
    w = tmp_path / "run"
    (tmp_path / "a").mkdir()
    procs = _start_workers(records, w, tmp_path / "a")
    results = _finish(procs)
    for code, out, err in results:
        assert code == 0, err[-3000:]
        assert "done: step 4 (gan phase)" in out
    # The chief (worker 0) wrote checkpoints, events, metrics, samples.
    assert (w / "checkpoints" / "ckpt-4.index").exists()
    events = glob.glob(str(w / "tensorboard" / "events.out.tfevents.*"))
    assert len(events) == 1, events  # the chief's only
    assert _metric_steps(w) == [1, 2, 3, 4]  # not twice
    assert (w / "config.json").exists()
    config = json.loads((w / "config.json").read_text())
    assert config["derived"]["replicas"] == 2
    # Worker 1 wrote only to workertemp_1/, removed when it finished.
    assert sorted(p.name for p in w.iterdir()) == [
        "checkpoints",
        "config.json",
        "flags.txt",
        "metrics.jsonl",
        "samples",
        "tensorboard",
    ]
    # Identical generator weights on both workers.
    a = np.load(tmp_path / "a" / "worker0.npz")
    b = np.load(tmp_path / "a" / "worker1.npz")
    assert len(a.files) == len(b.files) > 50
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])

    # A restart of both (2 more epochs) resumes from the chief's step 4.
    (tmp_path / "b").mkdir()
    procs = _start_workers(records, w, tmp_path / "b", "--epochs=3")
    for code, out, err in _finish(procs):
        assert code == 0, err[-3000:]
        assert "resumed from" in out and "(step 4)" in out
        assert "done: step 6 (gan phase)" in out
    assert (w / "checkpoints" / "ckpt-6.index").exists()
    assert _metric_steps(w) == [1, 2, 3, 4, 5, 6]
    a = np.load(tmp_path / "b" / "worker0.npz")
    b = np.load(tmp_path / "b" / "worker1.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.slow
def test_killed_worker_fails_the_other_clearly_and_restart_resumes(
    tmp_path, records
):
    w = tmp_path / "run"
    procs = _start_workers(
        records, w, tmp_path, "--epochs=200", "--checkpoint_every=2"
    )
    end = time.time() + 600
    while not glob.glob(str(w / "checkpoints" / "ckpt-4.index")):
        assert time.time() < end, "no checkpoint in 10 min"
        assert all(p.poll() is None for p in procs), _finish(procs)
        time.sleep(0.5)
    procs[1].kill()  # kill -9 the non-chief mid-run
    killed_at = time.time()
    out, err = procs[0].communicate(timeout=300)  # must not hang
    waited = time.time() - killed_at
    procs[1].wait()
    assert procs[0].returncode == 1, err[-3000:]
    assert "lost contact with another training worker" in err, err[-3000:]
    assert "restart every worker" in err
    print(f"chief failed {waited:.1f} s after its peer was killed")
    latest = max(
        int(p.split("ckpt-")[1].split(".")[0])
        for p in glob.glob(str(w / "checkpoints" / "ckpt-*.index"))
    )
    # Restart both: they resume from the chief's last checkpoint and
    # finish 2 more steps.
    epochs = latest // 2 + 1
    procs = _start_workers(records, w, tmp_path, f"--epochs={epochs}")
    for code, out, err in _finish(procs):
        assert code == 0, err[-3000:]
        assert f"(step {latest})" in out
        assert f"done: step {epochs * 2} (gan phase)" in out
