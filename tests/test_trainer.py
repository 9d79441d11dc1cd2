"""The trainer: distributed steps, phases, resume, NaN guard, configs.

Speed: a trainer costs ~2 s to build and ~5 s to trace each phase's step,
so the tests share what they can. One module-scoped run (`trained`: 4 init
steps, 2 GAN steps) is the finished work dir of the outputs and logging
tests, the uninterrupted reference of the resume test and the starting
point of the NaN tests (a copy cut back to its step-4 checkpoint). The
networks are the tiny ones of `tiny_train_config` (generator width 4,
discriminator 8 channels): these tests check the algorithm's plumbing,
which does not depend on the widths (those are tested in tests/test_models.py).
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import flagsaver
from conftest import REPO
from conftest import parse_train_args

from uegan_tf.data.pipeline import build_train_dataset
from uegan_tf.testing import TINY_MODEL
from uegan_tf.testing import tiny_train_config
from uegan_tf.testing import write_fake_records
from uegan_tf.train.trainer import GAN
from uegan_tf.train.trainer import Trainer
from uegan_tf.train.trainer import TrainingDivergedError
from uegan_tf.train.trainer import discriminator_view
from uegan_tf.train.workdir import load_generator_from_workdir


@pytest.fixture(scope="module", autouse=True)
def no_grappler():
    """Grappler off while this module's steps are traced.

    Its graph rewrites (constant folding, layout, remapping) take ~2.5 s on
    the first call of each traced step here and change no result these
    tests look at; every other module, the slow jit test included, runs
    with them.
    """
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": True}
    )
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": False}
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_fake_records(
        tmp_path_factory.mktemp("data"), n_photo=6, n_style=4, size=40
    )


def _weights(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def _changed(before, model):
    return sum(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights)
    )


def _quiet(**kw):
    return dict(progress=False, log=lambda m: None, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, records):
    """One uninterrupted run: 4 init steps, then 2 GAN steps.

    Checkpoints and samples every 2 steps, metrics every 3 (steps 3 and
    6, the last). The trainer is returned too, with its weights copied at
    the end (tests may run more steps on it; they compare against the
    copies), and how many times metrics were brought to the host.
    """
    from uegan_tf.train import trainer as trainer_lib

    w = tmp_path_factory.mktemp("trained") / "w"
    cfg = tiny_train_config(
        w,
        records,
        steps_per_epoch=2,
        epochs=3,
        init_epochs=2,
        log_every=3,
        checkpoint_every=2,
        sample_every=2,
    )
    converted = []
    original = trainer_lib.metrics_to_host

    def counting(metrics):
        converted.append(len(metrics))
        return original(metrics)

    with pytest.MonkeyPatch.context() as patch:  # module scope
        patch.setattr(trainer_lib, "metrics_to_host", counting)
        trainer = Trainer(cfg, **_quiet())
        result = trainer.train()
    return types.SimpleNamespace(
        workdir=w,
        cfg=cfg,
        result=result,
        converted=converted,
        trainer=trainer,
        generator=_weights(trainer.generator),
        discriminator=_weights(trainer.discriminator),
    )


def _ckpt_step(path):
    """Step of a checkpoint file or folder: ckpt-N.index, ckpt-N_temp."""
    return int(path.name.split("-")[1].split(".")[0].split("_")[0])


def _copy_at_step(trained, dest, step, **changes):
    """The `trained` work dir as it was at `step`, and its config.

    Later checkpoints and samples are removed and the checkpoint state
    points at `ckpt-<step>`: what a run killed after that checkpoint
    leaves (its metrics.jsonl lines past `step` are the trainer's to drop).
    """
    shutil.copytree(trained.workdir, dest)
    ckpts = dest / "checkpoints"
    for path in ckpts.glob("ckpt-*"):
        if _ckpt_step(path) > step:
            path.unlink()
    kept = sorted({_ckpt_step(p) for p in ckpts.glob("ckpt-*.index")})
    tf.compat.v1.train.update_checkpoint_state(
        str(ckpts),
        f"ckpt-{step}",
        all_model_checkpoint_paths=[f"ckpt-{n}" for n in kept],
    )
    for path in (dest / "samples").glob("step_*.png"):
        if int(path.stem.split("_")[1]) > step:
            path.unlink()
    cfg = dataclasses.replace(trained.cfg, workdir=str(dest), **changes)
    return cfg.validate()


def test_global_batch_reduction_matches_single_replica(
    tmp_path, records, two_replicas
):
    """2 replicas x 2 examples train exactly as 1 replica x 4.

    One GAN step on the same batch, from the same seeded weights: every
    loss and every generator and discriminator weight must agree. (The
    init step reduces its loss with the same `Trainer._average` and
    applies it through the same Keras optimizer path; it is not traced a
    second time here, which would cost ~15 s.) The losses catch a wrong
    reduction (a per-replica mean instead of
    `compute_average_loss(global_batch_size=4)` doubles the summed
    metrics); the weights catch replicas that see the wrong data or update
    out of sync. (Adam's first steps are invariant to a constant gradient
    scale, so the weights alone could not catch the factor.) On 2 replicas,
    every G and D variable moved, each loss term is reported and finite,
    and the replicas hold identical (mirrored) weights.
    """
    cfg = tiny_train_config(tmp_path / "a", records, batch_size=4)
    batch = next(iter(build_train_dataset(cfg.data, 4, seed=0)))
    runs = []
    for n, strategy in (
        (1, tf.distribute.MirroredStrategy(["/cpu:0"])),
        (2, two_replicas),
    ):
        trainer = Trainer(
            tiny_train_config(tmp_path / str(n), records, batch_size=4),
            strategy=strategy,
            **_quiet(),
        )
        assert trainer.num_replicas == n
        models = (trainer.generator, trainer.discriminator)

        def weights(models=models):
            return [w.numpy() for m in models for w in m.weights]

        run = {"start": weights()}
        g0, d0 = _weights(trainer.generator), _weights(trainer.discriminator)
        it = iter(
            strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensors(batch)
            )
        )
        out = trainer.gan_fn(it)
        run["gan_loss"] = {k: float(v) for k, v in out.items()}
        run["gan"] = weights()
        runs.append(run)
    one, two = runs
    # The 2-replica GAN step: every term reported and finite, every G and
    # D variable moved, the replicas in sync.
    gan = two["gan_loss"]
    for key in (
        "loss/g/adv",
        "loss/g/content",
        "loss/g/style",
        "loss/g/color",
        "loss/g/tv",
        "loss/g/edge",
        "loss/d/real",
        "loss/d/fake",
        "loss/d/gray",
        "loss/d/smooth",
    ):
        assert key in gan and np.isfinite(gan[key]), key
    assert _changed(g0, trainer.generator) == len(g0)
    assert _changed(d0, trainer.discriminator) == len(d0)
    for w in trainer.generator.trainable_weights[:3]:
        parts = strategy.experimental_local_results(w.value)
        np.testing.assert_array_equal(parts[0].numpy(), parts[1].numpy())
    assert int(trainer.step.numpy()) == 1
    for a, b in zip(one["start"], two["start"]):
        np.testing.assert_array_equal(a, b)  # seeded: same start
    for phase, rate in (("gan", 2e-5),):
        loss1, loss2 = one[f"{phase}_loss"], two[f"{phase}_loss"]
        assert loss1.keys() == loss2.keys()
        for key in loss1:
            # atol: near-zero means (d/logit_* ~ -2.5e-3) differ by ~3e-8
            # with the reduction order; a wrong reduction is off by 2x.
            np.testing.assert_allclose(
                loss1[key], loss2[key], rtol=1e-5, atol=1e-6, err_msg=key
            )
        prev = one["start"]
        moved = max(np.abs(a - b).max() for a, b in zip(one[phase], prev))
        assert moved > 0.5 * rate  # the step moved weights measurably
        # Adam's first steps move a weight by ~rate * sign(gradient): a
        # replica that saw other data or skipped the sync differs on most
        # weights. Float reduction order can flip the sign of a few
        # near-zero gradients (measured: 1 of 4,704 elements of one
        # kernel, 4e-5 = 2 x g_lr): bounded by 2 x the rate.
        for a, b in zip(one[phase], two[phase]):
            np.testing.assert_allclose(a, b, atol=2 * rate + 1e-6, rtol=0)
        total = sum(a.size for a in one[phase])
        close = sum(
            int((np.abs(a - b) <= 1e-6).sum())
            for a, b in zip(one[phase], two[phase])
        )
        assert close / total > 0.999, (phase, close / total)


def test_init_phase_reduces_content_loss_on_a_fixed_batch(trained):
    # Reference init rate 2e-4. With random VGG features at 32 px the loss
    # is noisy; measured here: about -30 % after 40 steps. (On the shared
    # trainer: its init step is traced already; the weights the other
    # tests compare against were copied before.)
    trainer = trained.trainer
    batch = next(trainer.iterator)
    fixed = iter(tf.data.Dataset.from_tensors(batch).repeat())
    losses = [
        float(trainer.init_fn(fixed)["loss/init/content"]) for _ in range(40)
    ]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:2]), losses


def test_resume_equals_uninterrupted_run(tmp_path, trained):
    assert trained.result["step"] == 6 and trained.result["phase"] == "gan"
    # Killed after the step-4 checkpoint (the end of the init phase).
    cfg = _copy_at_step(trained, tmp_path / "resumed", 4)
    resumed = Trainer(cfg, **_quiet())
    assert resumed.restore() == 4
    # Resumed from the saved weights (read back by the work-dir reader),
    # not from scratch.
    saved, info = load_generator_from_workdir(tmp_path / "resumed", step=4)
    assert info["step"] == 4
    for a, b in zip(
        saved.trainable_weights, resumed.generator.trainable_weights
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    result = resumed.train()
    assert result["step"] == 6 and result["phase"] == "gan"
    assert int(resumed.phase.numpy()) == GAN
    # Same data order (iterator in the checkpoint), same updates.
    for full, model in (
        (trained.generator, resumed.generator),
        (trained.discriminator, resumed.discriminator),
    ):
        for a, b in zip(full, model.trainable_weights):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4)
    # The metrics file reads as one run: its log steps 3 and 6, once each.
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3, 6]


def test_outputs_checkpoints_tensorboard_samples(trained):
    w = trained.workdir
    assert sorted(os.listdir(w / "checkpoints")) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
        "ckpt-6.data-00000-of-00001",
        "ckpt-6.index",
    ]
    events = glob.glob(str(w / "tensorboard" / "events.out.tfevents.*"))
    assert len(events) == 1
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        tags |= {v.tag for v in event.summary.value}
    assert {
        "loss/init/content",
        "loss/g/adv",
        "loss/g/edge",
        "loss/d/smooth",
        "samples/val",
    } <= tags
    assert sorted(os.listdir(w / "samples")) == [
        "step_0000002.png",
        "step_0000004.png",
        "step_0000006.png",
    ]
    generator, info = load_generator_from_workdir(w)
    assert info["step"] == 6 and generator.unet
    assert generator.width == TINY_MODEL["g_width"]
    # The work dir's generator is the trainer's at step 6, weight for weight.
    assert len(generator.trainable_weights) == len(trained.generator)
    for a, b in zip(trained.generator, generator.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())


def _resumed_with_nan_photos(tmp_path, trained, **overrides):
    """A trainer resumed at step 4 (ckpt-4) whose next batches are NaN.

    4 init steps were trained, a checkpoint after them; the returned
    trainer checkpoints every step (unless `overrides` say otherwise) and
    runs on NaN photos from step 5 (a GAN step).
    """
    changes = {"checkpoint_every": 1} | overrides
    cfg = _copy_at_step(trained, tmp_path / "w", 4, **changes)
    trainer = Trainer(cfg, **_quiet())
    trainer.restore()
    batch = next(trainer.iterator)
    nan_batch = dict(batch, photo=batch["photo"] * np.nan)
    trainer.iterator = iter(tf.data.Dataset.from_tensors(nan_batch).repeat())
    trainer.restore = lambda: int(trainer.step.numpy())
    return trainer


def test_metrics_reach_the_host_only_at_log_steps(trained):
    """No per-step host sync: metrics are converted every log_every steps.

    6 steps with log_every=3: converted and logged at steps 3 and 6 (the
    last), where metrics.jsonl gets its only lines.
    """
    assert len(trained.converted) == 2
    lines = (trained.workdir / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert [m["step"] for m in logged] == [3, 6]
    assert "loss/init/content" in logged[0] and "loss/g/adv" in logged[1]
    assert trained.result["metrics"] == {
        k: v for k, v in logged[-1].items() if k.startswith(("loss", "d/"))
    }


def test_nan_between_log_steps_is_caught_at_the_next_check(tmp_path, trained):
    """NaN at step 5, checked at step 8: named as step 5, nothing written.

    Finiteness is recorded on device every step and read at the next log,
    sample or checkpoint step (here 8), before anything is written.
    """
    trainer = _resumed_with_nan_photos(
        tmp_path,
        trained,
        epochs=5,
        log_every=4,
        checkpoint_every=4,
        sample_every=4,
    )
    good = trainer.manager.latest_checkpoint
    assert good.endswith("ckpt-4")
    # The step and the loss term that went NaN, not the step it was seen.
    with pytest.raises(
        TrainingDivergedError,
        match=r"loss/g/\w+ became nan at step 5 \(gan phase\)",
    ):
        trainer.train()
    assert int(trainer.step.numpy()) == 8  # ran on, then stopped
    assert trainer.manager.latest_checkpoint == good
    lines = (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3]
    assert not (tmp_path / "w" / "samples" / "step_0000008.png").exists()


def test_discriminator_view_luma_by_hand():
    # (r, g, b) = (1, -1, 0) in [-1, 1] is (1, 0, 0.5) in [0, 1]:
    # Y = 0.299 * 1 + 0.587 * 0 + 0.114 * 0.5 = 0.356 -> 2Y - 1 = -0.288.
    x = tf.constant([[[[1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]]]])
    y = discriminator_view(x, "luma")
    np.testing.assert_allclose(
        y.numpy()[0, 0], [[-0.288] * 3, [-1.0] * 3], atol=1e-6
    )
    assert discriminator_view(x, "rgb") is x
    with pytest.raises(ValueError, match="unknown discriminator input"):
        discriminator_view(x, "hsv")


def test_luma_discriminator_needs_no_gray_term(tmp_path, records):
    # A luma D sees no colour, so the gray term (anime in luma as fake)
    # would teach it the opposite of the real term: refused unless 0.
    # Trained with it in test_feature_discriminator_gan_step.
    with pytest.raises(ValueError, match="--d_gray_weight=0"):
        tiny_train_config(tmp_path / "w", records, model={"d_input": "luma"})


def test_feature_discriminator_gan_step(tmp_path, records):
    """`--d_arch=vgg`: D is a head on the frozen VGG's block-3 features.

    A GAN step on the luma view (gray term 0) trains the head (every
    variable moves) and leaves the VGG untouched; the checkpoint holds the
    head, not the VGG.
    """
    cfg = tiny_train_config(
        tmp_path / "w",
        records,
        model={"d_arch": "vgg", "d_input": "luma"},
        loss={"d_gray": 0.0},
        epochs=1,
        init_epochs=0,
        steps_per_epoch=1,
    )
    trainer = Trainer(cfg, **_quiet())
    assert trainer.discriminator.channels == 2 * TINY_MODEL["d_channels"]
    vgg0 = [w.numpy().copy() for w in trainer.vgg.weights]
    d0 = _weights(trainer.discriminator)
    result = trainer.train()
    assert result["step"] == 1
    # The gray term is weighted 0 but still measured; every loss is finite.
    assert all(np.isfinite(v) for v in result["metrics"].values())
    assert "loss/d/gray" in result["metrics"]
    assert _changed(d0, trainer.discriminator) == len(d0) == 2
    for a, b in zip(vgg0, trainer.vgg.weights):
        np.testing.assert_array_equal(a, b.numpy())
    ckpt = tf.train.load_checkpoint(str(tmp_path / "w" / "checkpoints"))
    names = list(ckpt.get_variable_to_shape_map())
    assert not any("block1_conv1" in n for n in names)
    assert any("hidden" in n for n in names)


def test_refuses_a_workdir_of_another_architecture(tmp_path, records):
    # The work dir's config.json, as a first run writes it.
    Trainer(
        tiny_train_config(tmp_path / "w", records), **_quiet()
    )._write_config()
    with pytest.raises(ValueError, match="unet=True"):
        Trainer(
            tiny_train_config(tmp_path / "w", records, model={"unet": False}),
            **_quiet(),
        )
    narrower = tiny_train_config(tmp_path / "w", records, model={"g_width": 2})
    with pytest.raises(
        ValueError, match="g_width=4; this config has g_width=2"
    ):
        Trainer(narrower, **_quiet())


@pytest.mark.parametrize(
    "precision,dtype,scaled",
    [("mixed_float16", "float16", True), ("mixed_bfloat16", "bfloat16", False)],
)
def test_mixed_precision_step_is_finite(
    tmp_path, records, precision, dtype, scaled
):
    cfg = tiny_train_config(tmp_path / "w", records, precision=precision)
    trainer = Trainer(cfg, **_quiet())
    trainer.restore()
    assert trainer.generator.compute_dtype == dtype
    assert trainer.generator.variables[0].dtype == "float32"
    # Loss scaling only where the exponent range needs it (float16).
    assert (
        isinstance(trainer.g_opt, tf.keras.optimizers.LossScaleOptimizer)
        == scaled
    )
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    # The GAN step (the init step's generator and content loss are in it).
    out = trainer.gan_fn(trainer.iterator)
    assert all(np.isfinite(float(v)) for v in out.values())
    assert "loss/g/content" in out and "loss/d/smooth" in out


def test_old_config_json_mixed_precision_maps_to_float16():
    from uegan_tf.config import TrainConfig

    old = TrainConfig(workdir="w").to_dict()
    del old["precision"]
    old["mixed_precision"] = True
    assert TrainConfig.from_dict(old).precision == "mixed_float16"
    old["mixed_precision"] = False
    assert TrainConfig.from_dict(old).precision == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(workdir="w", precision="fp8").validate()


@pytest.mark.slow
def test_jit_compiled_step_runs(tmp_path, records):
    cfg = tiny_train_config(tmp_path / "w", records, jit_compile=True)
    trainer = Trainer(cfg, **_quiet())
    trainer.restore()
    out = trainer.gan_fn(trainer.iterator)
    assert all(np.isfinite(float(v)) for v in out.values())


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in (REPO / "configs").glob("*.flags")
        if p.name != "base.flags"
    ),
)
def test_every_config_parses(name, monkeypatch):
    monkeypatch.chdir(REPO)  # nested flagfile paths are repo-relative
    with flagsaver.flagsaver():
        cfg = parse_train_args(f"--flagfile=configs/{name}")
    assert cfg.workdir and cfg.data.records_dir
    if name == "hayao.flags":
        assert (
            cfg.loss.content,
            cfg.loss.style,
            cfg.loss.color,
            cfg.loss.tv,
        ) == (1.5, 2.5, 15, 1)
        assert (cfg.loss.d_real, cfg.loss.d_smooth) == (1.2, 0.8)
    if name == "shinkai.flags":
        assert (cfg.loss.content, cfg.loss.style, cfg.loss.color) == (
            1.2,
            2.0,
            10,
        )
    if name == "paprika.flags":
        assert (cfg.loss.style, cfg.loss.color, cfg.loss.d_smooth) == (
            0.6,
            50,
            0.005,
        )
    if name == "smoke.flags":
        assert cfg.data.crop_size == 32 and cfg.model.vgg_weights == "none"
    assert cfg.optim.beta_1 == 0.5 and cfg.loss.g_adv == 300


def test_flagfiles_compose_and_command_line_wins(monkeypatch):
    monkeypatch.chdir(REPO)
    with flagsaver.flagsaver():
        cfg = parse_train_args(
            "--flagfile=configs/hayao.flags", "--style_weight=9", "--nounet"
        )
    assert cfg.loss.style == 9 and not cfg.model.unet
    assert cfg.epochs == 101  # from base.flags through hayao.flags


def test_invalid_values_name_the_flag(tmp_path, records):
    with pytest.raises(ValueError, match="crop_size"):
        tiny_train_config(tmp_path, records, data={"crop_size": 30})
    with pytest.raises(ValueError, match="init_epochs"):
        tiny_train_config(tmp_path, records, init_epochs=5, epochs=2)
    with pytest.raises(ValueError, match="loss weight style"):
        tiny_train_config(tmp_path, records, loss={"style": -1.0})


def _train_cmd(records, workdir, *extra):
    return [
        sys.executable,
        "-m",
        "uegan_tf.train",
        "--flagfile=configs/smoke.flags",
        f"--records_dir={records}",
        f"--val_dir={records}",
        f"--workdir={workdir}",
        # The tiny networks of tiny_train_config (plumbing, not widths).
        *(f"--{k}={v}" for k, v in TINY_MODEL.items()),
        *extra,
    ]


def test_smoke_config_end_to_end(tmp_path, records):
    """The training binary on configs/smoke.flags, quiet, in a subprocess.

    Init steps only (`--epochs=1` of 2 steps): the GAN phase runs through
    the same `Trainer.train`, traced in-process by the `trained` fixture;
    a second trace here would cost ~10 s.
    """
    run = subprocess.run(
        _train_cmd(records, tmp_path / "smoke", "--epochs=1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "done: step 2 (init phase)" in run.stdout
    # TensorFlow's start-up lines are hidden (issue 17): no cuInit, oneDNN
    # or pre-absl-init notices.
    assert "cuInit" not in run.stderr and "oneDNN" not in run.stderr
    assert "absl::InitializeLog" not in run.stderr, run.stderr[:2000]
    w = tmp_path / "smoke"
    assert (w / "checkpoints" / "ckpt-2.index").exists()
    assert glob.glob(str(w / "tensorboard" / "events.out.tfevents.*"))
    assert (w / "flags.txt").exists() and (w / "config.json").exists()
    assert "--crop_size=32" in (w / "flags.txt").read_text()


@pytest.mark.slow
def test_sigterm_saves_and_kill9_resumes(tmp_path, records):
    w = tmp_path / "run"
    extra = ["--epochs=40", "--checkpoint_every=3"]
    proc = subprocess.Popen(
        _train_cmd(records, w, *extra),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(
        lambda: (
            (w / "metrics.jsonl").exists()
            and len((w / "metrics.jsonl").read_text().splitlines()) >= 4
        )
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Run the same command to resume" in err
    # kill -9 at moments chosen by progress, not by the clock (on a loaded
    # machine fixed delays can all land during start-up): 1 and 2 steps
    # after the restart's checkpoint, and while a checkpoint is being
    # written (its ckpt-N_temp folder exists, when the poll sees it).
    # Every restart resumes.
    ckpts = w / "checkpoints"
    for moment in ("1 step", "2 steps", "saving"):
        start = _latest_step(ckpts)
        proc = subprocess.Popen(
            _train_cmd(records, w, *extra),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if moment == "saving":
            # The temp folder lives ~0.1-0.5 s; a poll can miss it, so 4
            # steps past the checkpoint is the fallback moment.
            _wait_for(
                lambda start=start, proc=proc: (
                    any(ckpts.glob("*_temp*"))
                    or _last_logged_step(w) >= start + 4
                    or proc.poll() is not None
                ),
                poll=0.02,
            )
        else:
            ahead = int(moment[0])
            _wait_for(
                lambda ahead=ahead, start=start, proc=proc: (
                    _last_logged_step(w) >= start + ahead
                    or proc.poll() is not None
                ),
                poll=0.05,
            )
        assert proc.poll() is None, f"run ended before the kill ({moment})"
        proc.kill()
        proc.wait()
        assert _last_logged_step(w) > start  # it got past start-up
    run = subprocess.run(
        _train_cmd(records, w, *extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "done: step 80 (gan phase)" in run.stdout
    assert "resumed from" in run.stdout


def _wait_for(predicate, timeout=900, poll=0.5):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(poll)
    raise TimeoutError


def _latest_step(checkpoints):
    """Step of the newest checkpoint in a work dir's checkpoints/ (0: none)."""
    indexes = checkpoints.glob("ckpt-*.index")
    return max((_ckpt_step(p) for p in indexes), default=0)


def _last_logged_step(workdir):
    """Step of the last complete line of metrics.jsonl (0: none yet)."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = [x for x in path.read_text().splitlines() if x.endswith("}")]
    return json.loads(lines[-1])["step"] if lines else 0
