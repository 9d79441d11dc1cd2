"""The UE-AnimeGANv2 trainer: a custom distributed loop.

Per step, as the reference (`AnimeGANv2.py`, `training_rate = 1`): first the
discriminator is updated on real colour anime, generated images, grayscale
anime and grayscale edge-smoothed anime; then the generator is updated
against the updated discriminator. Before that, an init phase trains the
generator on the content loss alone (reconstruction), so that the GAN starts
from a generator that already reproduces photos.

Everything runs under a `tf.distribute` strategy: models and optimizers are
built inside its scope, per-example losses are reduced once with
`tf.nn.compute_average_loss(global_batch_size=...)` (Keras 3 optimizers sum
gradients over replicas), and the per-replica step is a plain function run by
`strategy.run` inside one `tf.function`.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import time

import keras
import tensorflow as tf
from tqdm import tqdm

from uegan_tf import losses
from uegan_tf.data.pipeline import build_train_dataset
from uegan_tf.data.pipeline import load_validation_images
from uegan_tf.data.pipeline import verify_shards
from uegan_tf.data.prepare import read_manifest
from uegan_tf.fileutil import write_text_atomic
from uegan_tf.models import build_discriminator
from uegan_tf.models import build_generator
from uegan_tf.models import build_vgg_features
from uegan_tf.precision import cpu_has_bf16
from uegan_tf.train import summaries
from uegan_tf.train.workdir import CHECKPOINT_DIR
from uegan_tf.train.workdir import CONFIG_FILE
from uegan_tf.train.workdir import load_workdir_config

INIT, GAN = 0, 1
PHASE_NAMES = {INIT: "init", GAN: "gan"}


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM during training (a checkpoint was saved)."""


def make_strategy(kind="auto"):
    """Build the distribution strategy named by `TrainConfig.strategy`.

    "auto": `MultiWorkerMirroredStrategy` when `TF_CONFIG` lists more than
    one worker, otherwise `MirroredStrategy` over all local GPUs (the CPU
    when there are none).
    """
    if kind == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get(
            "cluster", {}
        )
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        kind = "multiworker" if workers > 1 else "mirrored"
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy(["/cpu:0"])
    return tf.distribute.get_strategy()


def derive_steps_per_epoch(cfg, manifest):
    """Reference epoch length: floor(max(#photos, #styles) / batch), >= 1."""
    if cfg.steps_per_epoch:
        return cfg.steps_per_epoch
    n = max(manifest["photo"]["count"], manifest["style"]["count"])
    return max(1, n // cfg.batch_size)


def _is_chief(strategy):
    """True unless this is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (
        not has_chief and task_type == "worker" and task_id == 0
    )


def _task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return getattr(resolver, "task_id", None) or 0


class Trainer:
    """Builds everything for a `TrainConfig` and runs the training loop.

    Args:
        cfg: a validated `TrainConfig`.
        strategy: a `tf.distribute.Strategy`; built from `cfg.strategy` when
            None.
        log: where one-line messages go.
        progress: show a tqdm progress bar.
    """

    def __init__(self, cfg, strategy=None, log=print, progress=True):
        self.cfg = cfg.validate()
        self.log = log
        self.progress = progress
        self.workdir = pathlib.Path(cfg.workdir)
        self._check_workdir()
        self.strategy = strategy or make_strategy(cfg.strategy)
        # Keras' multi-worker convention: every worker runs the same code
        # (checkpoint saves and summaries take part in collectives), but
        # only the chief writes to the work dir; the others write to
        # `WORKDIR/workertemp_<task id>/`, deleted when training ends. All
        # workers restore from the chief's `WORKDIR/checkpoints`, so the
        # work dir must be on storage every worker reads (NFS, GCS, ...).
        self.is_chief = _is_chief(self.strategy)
        self.output_dir = (
            self.workdir
            if self.is_chief
            else self.workdir / f"workertemp_{_task_id(self.strategy)}"
        )
        self.num_replicas = self.strategy.num_replicas_in_sync
        if cfg.batch_size % self.num_replicas:
            raise ValueError(
                f"batch_size {cfg.batch_size} is not divisible by the "
                f"{self.num_replicas} replicas"
            )
        self.manifest = read_manifest(cfg.data.records_dir)
        # Before anything is built: a truncated shard fails here, by name.
        verify_shards(cfg.data.records_dir)
        self.steps_per_epoch = derive_steps_per_epoch(cfg, self.manifest)
        self.init_steps = cfg.init_epochs * self.steps_per_epoch
        self.total_steps = cfg.epochs * self.steps_per_epoch
        keras.utils.set_random_seed(cfg.seed)
        self._build()

    # -- set-up ----------------------------------------------------------

    def _check_workdir(self):
        """Refuse to resume a work dir made for another architecture."""
        saved = load_workdir_config(self.workdir)
        if saved is None:
            return
        for name in (
            "unet",
            "upsample",
            "g_width",
            "d_channels",
            "d_layers",
            "spectral_norm",
        ):
            old = getattr(saved.model, name)
            new = getattr(self.cfg.model, name)
            if old != new:
                raise ValueError(
                    f"{self.workdir} holds a run with {name}={old}; this "
                    f"config has {name}={new}. Use another --workdir."
                )

    def _build(self):
        cfg, m, o = self.cfg, self.cfg.model, self.cfg.optim
        # Mixed precision: layers take the policy when they are created.
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(cfg.precision)
        if cfg.precision == "mixed_bfloat16" and not cpu_has_bf16():
            self.log(
                "note: this CPU has no AVX512_BF16/AMX; mixed_bfloat16 runs "
                "emulated and is slower than float32 here"
            )
        try:
            with self.strategy.scope():
                self.generator = build_generator(
                    unet=m.unet, upsample=m.upsample, width=m.g_width
                )
                self.discriminator = build_discriminator(
                    m.d_channels, m.d_layers, m.spectral_norm
                )
                weights = None if m.vgg_weights == "none" else m.vgg_weights
                self.vgg = build_vgg_features(m.vgg_arch, weights)

                def adam(lr):
                    opt = keras.optimizers.Adam(
                        lr, beta_1=o.beta_1, beta_2=o.beta_2
                    )
                    # float16 underflows small gradients: scale the loss.
                    # bfloat16 has float32's exponent range and needs none.
                    if cfg.precision == "mixed_float16":
                        opt = keras.optimizers.LossScaleOptimizer(opt)
                    return opt

                self.init_opt = adam(o.init_lr)
                self.g_opt = adam(o.g_lr)
                self.d_opt = adam(o.d_lr)
                # Keras 3 optimizers must create their slots inside the
                # scope, before the first distributed step.
                self.init_opt.build(self.generator.trainable_variables)
                self.g_opt.build(self.generator.trainable_variables)
                self.d_opt.build(self.discriminator.trainable_variables)
                self.step = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="step"
                )
                self.phase = tf.Variable(
                    INIT, dtype=tf.int64, trainable=False, name="phase"
                )
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)

        # Checkpoint: models, optimizers, counters and, where tf.distribute
        # allows it, the data iterator (its shuffle buffers hold serialized
        # records, a few MB).
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            init_optimizer=self.init_opt,
            g_optimizer=self.g_opt,
            d_optimizer=self.d_opt,
            step=self.step,
            phase=self.phase,
        )
        self.iterator = None
        self.iterator_in_checkpoint = self.num_replicas == 1 and not (
            isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        )
        if self.iterator_in_checkpoint:
            # One replica: a plain tf.data iterator, which is trackable
            # (distributed iterators are not), fed to strategy.run as is.
            self.iterator = iter(
                build_train_dataset(
                    cfg.data, cfg.batch_size, None, seed=cfg.seed
                )
            )
            self.checkpoint.data = self.iterator
        # Non-chief workers save too (the save may run collectives), into
        # their temporary folder.
        ckpt_dir = self.output_dir / CHECKPOINT_DIR
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            str(ckpt_dir),
            max_to_keep=cfg.keep_checkpoints,
        )

        # The first non-finite metric (step, phase, term index, value),
        # recorded on device by every step and read by the host only at
        # check steps (`_check_finite`): no per-step host sync. Outside
        # the strategy scope (plain local variables, like a host flag; every
        # replica/worker records the same reduced values), not checkpointed.
        self._bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self._bad_phase = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self._bad_term = tf.Variable(-1, dtype=tf.int32, trainable=False)
        self._bad_value = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        # phase -> metric names in the step function's order (set on trace).
        self._metric_names = {}

        jit = cfg.jit_compile
        init_replica = tf.function(self._init_step, jit_compile=jit)
        gan_replica = tf.function(self._gan_step, jit_compile=jit)
        self.init_fn = self._distributed(init_replica, INIT)
        self.gan_fn = self._distributed(gan_replica, GAN)

    def _distributed(self, replica_fn, phase):
        strategy = self.strategy

        @tf.function
        def run(iterator):
            batch = next(iterator)
            per_replica = strategy.run(replica_fn, args=(batch,))
            self.step.assign_add(1)
            # Each replica returns its share of the global mean; the sum
            # over replicas is the mean over the global batch.
            metrics = {
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()
            }
            self._metric_names[phase] = list(metrics)
            self._record_non_finite(metrics, phase)
            return metrics

        return run

    def _record_non_finite(self, metrics, phase):
        """In graph: remember the first step with a NaN/Inf metric.

        A few scalar ops per step; the host reads them at check steps.
        """
        values = tf.stack([tf.cast(v, tf.float32) for v in metrics.values()])
        finite = tf.math.is_finite(values)
        first = tf.argmin(tf.cast(finite, tf.int32), output_type=tf.int32)
        new = tf.logical_and(
            self._bad_step < 0, tf.logical_not(tf.reduce_all(finite))
        )

        def keep_or(variable, value):
            variable.assign(tf.where(new, value, variable))

        keep_or(self._bad_step, tf.cast(self.step, tf.int64))
        keep_or(self._bad_phase, tf.constant(phase, tf.int64))
        keep_or(self._bad_term, first)
        keep_or(self._bad_value, values[first])

    def _check_finite(self):
        """Raise `TrainingDivergedError` if a step had a NaN/Inf metric.

        Called before anything is logged or saved: at log, sample and
        checkpoint steps, on a signal and at the end. So a divergence is
        reported up to `log_every - 1` steps after it happened (those steps
        are wasted compute), but always with the first bad step and term,
        and no checkpoint, sample or log line is written after it.
        """
        step = int(self._bad_step.numpy())
        if step < 0:
            return
        phase = int(self._bad_phase.numpy())
        term = self._metric_names[phase][int(self._bad_term.numpy())]
        value = float(self._bad_value.numpy())
        raise TrainingDivergedError(
            f"{term} became {value} at step {step} "
            f"({PHASE_NAMES[phase]} phase); the last good "
            f"checkpoint is {self.manager.latest_checkpoint}"
        )

    # -- per-replica steps (the algorithm) -------------------------------

    def _average(self, per_example):
        return tf.nn.compute_average_loss(
            per_example, global_batch_size=self.cfg.batch_size
        )

    def _init_step(self, batch):
        """Init phase: L = w_con * L1(VGG(p), VGG(G(p))) on G only."""
        photo = batch["photo"]
        w = self.cfg.loss
        g = self.generator
        photo_features = tf.stop_gradient(self.vgg(photo))
        with tf.GradientTape() as tape:
            fake = g(photo, training=True)
            content = losses.content_loss(photo_features, self.vgg(fake))
            loss = self._average(w.content * content)
            scaled = self.init_opt.scale_loss(loss)
        grads = tape.gradient(scaled, g.trainable_variables)
        self.init_opt.apply(grads, g.trainable_variables)
        return {
            "loss/init/content": self._average(content),
            "loss/init/total": loss,
        }

    def _gan_step(self, batch):
        """One D update, then one G update against the updated D."""
        photo = batch["photo"]  # p
        anime = batch["anime"]  # a
        anime_gray = batch["anime_gray"]  # gray(a)
        smooth_gray = batch["anime_smooth_gray"]  # gray(s)
        w = self.cfg.loss
        g, d = self.generator, self.discriminator
        avg = self._average

        with tf.GradientTape() as g_tape:
            fake = g(photo, training=True)  # G(p), reused by both updates

            # 1. Discriminator: a -> 1; G(p), gray(a), gray(s) -> 0. One
            #    pass over the four inputs (layer norm is per sample).
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    logits = d(
                        tf.concat(
                            [
                                anime,
                                tf.stop_gradient(fake),
                                anime_gray,
                                smooth_gray,
                            ],
                            axis=0,
                        ),
                        training=True,
                    )
                    real_l, fake_l, gray_l, smooth_l = tf.split(logits, 4)
                    d_terms = losses.lsgan_discriminator_loss(
                        real_l,
                        fake_l,
                        gray_l,
                        smooth_l,
                        w.d_real,
                        w.d_fake,
                        w.d_gray,
                        w.d_smooth,
                    )
                    d_loss = avg(w.d_adv * d_terms["total"])
                    d_scaled = self.d_opt.scale_loss(d_loss)
                d_grads = d_tape.gradient(d_scaled, d.trainable_variables)
                self.d_opt.apply(d_grads, d.trainable_variables)
                # Targets of the perceptual terms need no gradient.
                photo_features = self.vgg(photo)
                gray_features = self.vgg(anime_gray)

            # 2. Generator against the updated discriminator.
            fake_features = self.vgg(fake)
            terms = {
                "adv": losses.lsgan_generator_loss(d(fake, training=False)),
                "content": losses.content_loss(photo_features, fake_features),
                "style": losses.style_loss(gray_features, fake_features),
                "color": losses.color_loss(photo, fake),
                "tv": losses.total_variation_loss(fake),
            }
            if w.edge:
                terms["edge"] = losses.edge_loss(fake, photo)
            weights = {
                "adv": w.g_adv,
                "content": w.content,
                "style": w.style,
                "color": w.color,
                "tv": w.tv,
                "edge": w.edge,
            }
            g_per_example = tf.add_n([weights[k] * v for k, v in terms.items()])
            g_loss = avg(g_per_example)
            g_scaled = self.g_opt.scale_loss(g_loss)
        g_grads = g_tape.gradient(g_scaled, g.trainable_variables)
        self.g_opt.apply(g_grads, g.trainable_variables)

        metrics = {f"loss/g/{k}": avg(v) for k, v in terms.items()}
        metrics["loss/g/total"] = g_loss
        for k in ("real", "fake", "gray", "smooth"):
            metrics[f"loss/d/{k}"] = avg(d_terms[k])
        metrics["loss/d/total"] = d_loss
        metrics["d/logit_real"] = avg(losses._mean_per_example(real_l))
        metrics["d/logit_fake"] = avg(losses._mean_per_example(fake_l))
        return metrics

    # -- loop --------------------------------------------------------------

    def restore(self):
        """Resume from the latest checkpoint in the work dir; returns step.

        With several replicas the data iterator cannot be checkpointed: the
        pipeline is then re-seeded with the step, so a resumed run draws a
        fresh order instead of repeating the first batches.
        """
        # The chief's checkpoint on every worker: a non-chief's own saves
        # are temporary, and all workers must resume from the same step.
        latest = tf.train.latest_checkpoint(str(self.workdir / CHECKPOINT_DIR))
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            self.log(f"resumed from {latest} (step {int(self.step.numpy())})")
        step = int(self.step.numpy())
        if self.iterator is None:
            cfg = self.cfg

            def dataset_fn(input_context):
                return build_train_dataset(
                    cfg.data,
                    cfg.batch_size,
                    input_context,
                    seed=cfg.seed + step,
                )

            self.iterator = iter(
                self.strategy.distribute_datasets_from_function(dataset_fn)
            )
        return step

    def save(self):
        step = int(self.step.numpy())
        path = self.manager.save(checkpoint_number=step)
        return path

    def sample(self, step):
        """Write a validation grid (TensorBoard + PNG under samples/)."""
        if self._val_images is None:
            return None
        fake = self.generator(self._val_images, training=False)
        return summaries.write_sample_grid(
            self.writer,
            self.output_dir / "samples" / f"step_{step:07d}.png",
            self._val_images,
            fake,
            step,
        )

    def _load_val_images(self):
        d = self.cfg.data
        if d.num_val_images == 0:
            return None
        try:
            return load_validation_images(
                d.val_dir or d.records_dir, d.val_size, d.num_val_images
            )
        except FileNotFoundError as e:
            self.log(f"no sample grids: {e}")
            return None

    def _remove_interrupted_saves(self):
        """Delete `ckpt-N_temp/` folders of saves that a kill interrupted.

        `CheckpointManager` writes each checkpoint into `<prefix>_temp/`
        and renames its files into place when complete; a kill in between
        leaves the folder, which no later save or restore ever removes.
        The chief is the only writer of this folder.
        """
        folder = pathlib.Path(self.manager.directory)
        for path in sorted(folder.glob("ckpt-*_temp")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                self.log(f"removed {path}, an interrupted checkpoint write")

    def _truncate_metrics(self, step):
        """Drop `metrics.jsonl` lines after the resumed step.

        Steps logged after the last checkpoint are trained again after a
        resume; without this they would appear twice (73 lines for 60
        steps). A half-written last line (a kill mid-write) goes too.
        """
        path = self.output_dir / "metrics.jsonl"
        if not path.exists():
            return
        kept, dropped = [], 0
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                keep = int(record["step"]) <= step
            except (ValueError, KeyError, TypeError):
                keep = False
            if keep:
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            write_text_atomic(path, "".join(f"{line}\n" for line in kept))
            self.log(
                f"metrics.jsonl: dropped {dropped} line(s) after step {step}, "
                "which will be trained again"
            )

    def _write_config(self):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        payload = self.cfg.to_dict()
        payload["derived"] = {
            "steps_per_epoch": self.steps_per_epoch,
            "init_steps": self.init_steps,
            "total_steps": self.total_steps,
            "replicas": self.num_replicas,
        }
        write_text_atomic(
            self.output_dir / CONFIG_FILE,
            json.dumps(payload, indent=2, sort_keys=True),
        )

    def _remove_worker_temp(self):
        """A non-chief worker deletes its temporary output folder."""
        if not self.is_chief:
            self.writer.close()
            shutil.rmtree(self.output_dir, ignore_errors=True)

    def train(self):
        """Run (or resume) training to `total_steps`.

        Returns:
            dict with the final "step", "phase" and last metrics.

        Raises:
            TrainingDivergedError: a loss became NaN/Inf (no checkpoint is
                written after the bad step).
            TrainingInterrupted: SIGINT/SIGTERM; a checkpoint was saved.
        """
        cfg = self.cfg
        # ---- Set-up: resolved config, TensorBoard, resume ----------------
        self._write_config()
        self.writer = tf.summary.create_file_writer(
            str(self.output_dir / "tensorboard")
        )
        self._val_images = self._load_val_images()
        self._remove_interrupted_saves()
        step = self.restore()
        self._truncate_metrics(step)
        metrics = {}
        if step >= self.total_steps:
            self.log(f"already trained: step {step} >= {self.total_steps}")
            self._remove_worker_temp()
            return {
                "step": step,
                "phase": PHASE_NAMES[int(self.phase.numpy())],
                "metrics": metrics,
            }

        # ---- Signals: save on SIGTERM (schedulers) and Ctrl-C -----------
        stop = {"signal": None}

        def on_signal(signum, frame):
            stop["signal"] = signum

        old_handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old_handlers[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread
                pass

        bar = tqdm(
            total=self.total_steps,
            initial=step,
            disable=not self.progress,
            dynamic_ncols=True,
            unit="step",
        )
        log_file = open(self.output_dir / "metrics.jsonl", "a")
        start = time.time()
        # A fresh NaN guard (a previous `train()` of this object may have
        # left one), and the phase tracked here: reading variables every
        # step would be a host sync.
        self._bad_step.assign(-1)
        current_phase = int(self.phase.numpy())
        try:
            # ---- Train loop -------------------------------------------
            while step < self.total_steps:
                phase = INIT if step < self.init_steps else GAN
                if phase != current_phase:
                    if phase == GAN:
                        self._check_finite()  # before the sample
                        self.log(
                            f"init phase done at step {step}: adversarial "
                            "training starts"
                        )
                        self.sample(step)
                    self.phase.assign(phase)
                    current_phase = phase
                fn = self.init_fn if phase == INIT else self.gan_fn
                # Device tensors: converted (a host sync on a GPU) only at
                # log steps.
                out = fn(self.iterator)
                step += 1
                bar.set_description(PHASE_NAMES[phase])
                bar.update(1)

                log_now = step % cfg.log_every == 0 or step == self.total_steps
                sample_now = step % cfg.sample_every == 0
                save_now = step % cfg.checkpoint_every == 0
                if log_now or sample_now or save_now or stop["signal"]:
                    # NaN guard: stop before anything is written from a
                    # diverged run.
                    self._check_finite()
                if log_now:
                    metrics = metrics_to_host(out)
                    bar.set_postfix(_short(metrics), refresh=False)
                    summaries.write_scalars(self.writer, metrics, step)
                    log_file.write(
                        json.dumps(
                            {
                                "step": step,
                                "phase": PHASE_NAMES[phase],
                                "time": round(time.time() - start, 2),
                                **metrics,
                            }
                        )
                        + "\n"
                    )
                    log_file.flush()
                if sample_now:
                    self.sample(step)
                if save_now:
                    self.save()
                if stop["signal"] is not None:
                    path = self.save()
                    raise TrainingInterrupted(
                        f"stopped by signal {stop['signal']} at step {step}; "
                        f"saved {path}. Run the same command to resume."
                    )
            # ---- End: final checkpoint and samples ---------------------
            if step % cfg.checkpoint_every:
                self.save()
            if step % cfg.sample_every:
                self.sample(step)
        finally:
            bar.close()
            log_file.close()
            self.writer.flush()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self._remove_worker_temp()
        return {
            "step": step,
            "phase": PHASE_NAMES[int(self.phase.numpy())],
            "metrics": metrics,
        }


def metrics_to_host(metrics):
    """Device scalars -> Python floats (blocks until the step is done)."""
    return {k: float(v) for k, v in metrics.items()}


def _short(metrics):
    """A few losses for the progress bar."""
    keys = {
        "loss/init/content": "con",
        "loss/g/total": "g",
        "loss/d/total": "d",
        "loss/g/content": "con",
        "loss/g/adv": "adv",
    }
    return {v: f"{metrics[k]:.3g}" for k, v in keys.items() if k in metrics}


def config_summary(cfg):
    """A readable dump of a config (for --dry_run and logs)."""
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)


__all__ = [
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "derive_steps_per_epoch",
    "make_strategy",
]
