"""The training loop, written once for both twins.

A run lives in one out dir:

    <out>/ckpt/            the latest checkpoint, replaced atomically: a model any GPT-2 reader opens,
                           plus train_state/ for --resume (jai/checkpoint/train_state.py)
    <out>/metrics.jsonl    one line per step and per evaluation, flushed as written

The loop draws batches from the shared sampler (jai/dataset.py, so both twins see the same batches in the
same order), sets the learning rate for its place in the schedule, and asks the twin's `Trainer` (the
small interface below, implemented by jai_mlx/train.py and jai_torch/train.py) for one optimizer step.
It reads the device once per step (loss and gradient norm, for the log and the divergence check) and
draws the next batch before it does, so the host works while the device does.

Resuming restores the weights, Adam's moments and step count, the step (the schedule), the sampler and
the dropout RNG: a run interrupted at any point (`kill -9` included) and resumed from its last checkpoint
ends with the same weights as one never interrupted, on the same backend and device. The state is shared
by the twins, so a run may continue in the other one (dropout's RNG cannot cross).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from jai.checkpoint import train_state
from jai.checkpoint.lora import LoraConfig
from jai.checkpoint.run_lock import RunLock
from jai.checkpoint.train_state import TrainState
from jai.checkpoint.weights import CheckpointError
from jai.config import GPTConfig
from jai.dataset import BatchSampler
from jai.devices import BACKENDS, DeviceError, twin_module
from jai.errors import RunFailed
from jai.progress import progress_bar
from jai.train_config import TrainConfig, learning_rate
from jai.training import distributed
from jai.training import plan as run_plan
from jai.training.metrics_log import MetricsLog, RecordSink
from jai.training.plan import RunPlan


class TrainingDiverged(RunFailed):
    """The loss (or the gradient norm) stopped being finite; the last good checkpoint is kept."""


# A probe scores the model at each evaluation: model -> {figure name: value} for metrics.jsonl.
Probe = Callable[[Any], dict[str, float]]


class Trainer(Protocol):
    """What a twin does for the loop: everything here differs between frameworks, nothing else does.

    The loop calls `start` once, then `batch` + `step` + `result` per step, `evaluate` now and then, and
    `save` for each checkpoint.
    """

    writer: str  # "jai_mlx" or "jai_torch": who wrote a checkpoint
    device: str  # the resolved device name ("cpu", "gpu", "cuda", "mps")
    dtype: str  # "float32", or "bfloat16" for bf16 compute over float32 master weights
    description: str  # the device in words, for the log
    model: Any  # the twin's GPT, built by `start`: what a probe (see `train`) generates with

    def start(self, plan: RunPlan, resumed: TrainState | None) -> bool:
        """Build model and optimizer from the plan (fresh, resumed or initialised from a checkpoint) and
        seed or restore the RNG; False when a resumed RNG could not be restored (another twin wrote it)."""
        ...

    def batch(self, x: np.ndarray, y: np.ndarray) -> Any:
        """Host arrays -> the device: [grad_accum, B, T] for `step`, [B, T] for `evaluate`."""
        ...

    def step(self, batch: Any, lr: float) -> Any:
        """Queue one optimizer step at learning rate `lr`; returns a handle for `result`."""
        ...

    def result(self, handle: Any) -> tuple[float, float]:
        """Wait for a step: its mean loss and the gradient norm before clipping."""
        ...

    def evaluate(self, batch: Any) -> float:
        """The loss of one validation batch, in eval mode (no dropout), without gradients."""
        ...

    def save(self, ckpt_dir: Path, state: TrainState, tokenizer: Path | None) -> None:
        """Model, moments and `state` (with this twin's RNG filled in) into `ckpt_dir`, atomically."""
        ...

    def max_abs_weight(self) -> float:
        """The largest |w| over the model's weights; NaN or inf when any weight is not finite."""
        ...


def make_trainer(backend: str, device: str = "auto", dtype: str = "auto", compile: bool = False) -> Trainer:
    """The chosen twin's Trainer on its device; the twin is imported only here, so the other framework
    never loads. `dtype` "auto" is bfloat16 where the device computes in it, float32 elsewhere."""
    if backend not in BACKENDS:
        raise DeviceError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    devices = twin_module(backend, "device")
    name = devices.resolve_device(device)
    resolved = devices.default_dtype(name, dtype) if dtype == "auto" else dtype
    if resolved == "float32":
        devices.set_true_fp32()  # before the first matmul: MLX reads its TF32 switch once
    twin = twin_module(backend, "train")
    return twin.Trainer(devices.use_device(name), name, resolved, devices.describe(name), compile)


@dataclass
class Progress:
    """What a callback sees after each step (and what the summary is made of)."""

    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_sec: float
    val_loss: float | None = None


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) for a twin's model, restored after: both frameworks' modules have
    `training`, `eval()` and `train(mode)`."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


# GPT-2-style weights are O(1) (initialised at 0.02, trained GPT-2's largest are a few dozen). A weight
# past this has been thrown there by a diverging update, even while the loss still reads finite.
MAX_SANE_WEIGHT = 1e3
# A first evaluation may take at most this share of a --max-seconds budget; beyond it, fewer batches.
EVAL_SHARE = 0.25


def evaluate(
    trainer: Trainer, batches: list[Any], progress: bool, budget: float | None = None
) -> tuple[float, int]:
    """Mean validation loss, batch by batch with a progress bar; stops early once `budget` seconds are
    spent (keeping at least one batch). Returns the loss and how many batches it used."""
    started, losses = time.perf_counter(), []
    for batch in progress_bar(batches, desc="eval", unit="batch", enabled=progress):
        losses.append(trainer.evaluate(batch))
        if budget is not None and time.perf_counter() - started > budget:
            break
    return sum(losses) / len(losses), len(losses)


def train(
    backend: str | Trainer,
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    model_cfg: GPTConfig | None = None,
    train_cfg: TrainConfig | None = None,
    device: str = "auto",
    resume: bool = False,
    init_from: str | os.PathLike | None = None,
    max_seconds: float | None = None,
    stop_at: int | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    compile: bool = False,
    callback: Callable[[Progress], None] | None = None,
    lora: LoraConfig | None = None,
    probe: Probe | None = None,
    report_to: RecordSink | None = None,
) -> dict[str, Any]:
    """Train on `data_dir` (from `jai prepare`) into `out_dir` with a twin; return a summary of the run.

    `backend` is "mlx", "torch" or a ready Trainer. `model_cfg` gives the shape of a new model (its
    vocabulary comes from the data); `train_cfg` the hyperparameters (None: the defaults, or the
    checkpoint's own when resuming). `resume` continues <out>/ckpt exactly (`data_dir` None: the data
    the run was trained on); `init_from` starts a new run from another checkpoint's weights, or with
    `lora` trains a LoRA adapter on them (jai/checkpoint/lora.py).
    `max_seconds` bounds this whole call, evaluations and saving included: the run stops after the last
    step that leaves time for a final evaluation and save (times measured as the run goes; the first
    evaluation takes fewer batches if it would eat more than EVAL_SHARE of the budget), with a checkpoint
    to resume from. `stop_at` stops the same way after that step (the
    schedule still runs to max_steps), as if the run had been interrupted there. `callback` sees every
    step's `Progress`. `probe(model)` runs after every evaluation, the untrained one too, with the model in
    eval mode: the figures it returns join that evaluation's line in metrics.jsonl (`jai train
    --eval-answers` scores held-out answers this way; the loop itself knows nothing of answers).
    `report_to` (jai/reporting/) sees every record of metrics.jsonl, on rank 0 alone.
    Raises TrainingDiverged when the loss stops being finite or the weights leave
    their sane range, keeping the last good checkpoint; RunLocked when another process trains in `out_dir`.
    """
    t_begin = time.perf_counter()  # --max-seconds bounds everything from here, evaluations included
    log = log or tqdm.write
    # Under torchrun or mlx.launch, one of several processes (see distributed.py); alone, rank 0 of 1.
    ckpt = Path(out_dir) / train_state.CKPT_DIR
    world = distributed.join(
        backend if isinstance(backend, str) else backend.writer.removeprefix("jai_"),
        lambda: (
            f"The last checkpoint, {ckpt}, is intact (rank 0 writes it atomically): --resume continues."
            if ckpt.exists()
            else "No checkpoint had been written yet."
        ),
    )
    if not world.main:  # rank 0 alone logs and shows progress
        log, progress = (lambda _: None), False
    try:
        # one run per folder (the lock is rank 0's), released however this process ends
        with RunLock(out_dir) if world.main else nullcontext():
            with world.rank_zero_first():  # rank 0 repairs an interrupted save before the others read
                plan = run_plan.plan_run(data_dir, out_dir, model_cfg, train_cfg, resume, init_from, lora)
            if plan.train_config.sparse_targets:
                run_plan.add_loss_masks(plan)
            if plan.train_config.align_samples:
                run_plan.add_sample_starts(plan)
            return _train(
                plan,
                backend,
                device,
                compile,
                t_begin,
                max_seconds,
                stop_at,
                log,
                progress,
                callback,
                world,
                probe,
                report_to,
            )
    except Exception as e:
        world.raise_if_peer_lost(e)  # another process died mid-collective: say so in one line
        raise
    finally:
        world.close()


def _train(
    plan: RunPlan,
    backend: str | Trainer,
    device: str,
    compile: bool,
    t_begin: float,
    max_seconds: float | None,
    stop_at: int | None,
    log: Callable[[str], None],
    progress: bool,
    callback: Callable[[Progress], None] | None,
    world: distributed.World,
    probe: Probe | None = None,
    report_to: RecordSink | None = None,
) -> dict[str, Any]:
    """The loop itself, in the order a run goes: set up, evaluate the untrained model, then step,
    evaluate and checkpoint until max_steps, the clock or `stop_at` ends it."""
    run = _set_up(plan, backend, device, compile, t_begin, max_seconds, log, progress, world, report_to)
    run.probe = probe
    initial_val_loss = _evaluate_untrained(run)
    cfg, state = plan.train_config, run.state
    bar = progress_bar(
        total=cfg.max_steps, initial=run.start, unit="step", desc=run.trainer.writer, enabled=progress
    )
    stopped = "max_steps"
    run.t_start = run.t_last = time.perf_counter()
    try:
        if state.step < cfg.max_steps:
            run.prefetch()
        while state.step < cfg.max_steps:
            report, now = _step(run)
            bar.set_postfix(
                loss=f"{report.loss:.4f}",
                lr=f"{report.lr:.2e}",
                tok_s=f"{report.tokens_per_sec:,.0f}",
                refresh=False,
            )
            bar.update()
            out_of_time = _out_of_time(run, now)
            paused = out_of_time or report.step == stop_at
            last_step = report.step == cfg.max_steps or paused
            if world.main and (report.step % cfg.eval_interval == 0 or last_step):
                _evaluate(run, report)
            if world.main and (report.step % cfg.ckpt_interval == 0 or last_step):
                _checkpoint(run, report.step)
            if callback is not None:
                callback(report)
            if paused:
                stopped = "max_seconds" if out_of_time else "stop_at"
                log(
                    f"stopping at step {report.step} after {time.perf_counter() - t_begin:.1f}s ({stopped}); "
                    "--resume continues"
                )
                break
            run.t_last = time.perf_counter()  # evaluation and saving do not count against tokens/sec
    finally:
        bar.close()
        run.metrics.close()
    return _finish(run, initial_val_loss, stopped)


@dataclass
class _Run:
    """What the phases of one run share: its parts, its state, and its clock."""

    plan: RunPlan
    trainer: Trainer
    world: distributed.World
    sampler: BatchSampler
    val_batches: list[Any]
    state: TrainState
    metrics: MetricsLog | distributed.NullLog
    log: Callable[[str], None]
    progress: bool
    t_begin: float
    max_seconds: float | None
    start: int  # the step this call began at (0, or where a resumed run left off)
    elapsed_before: float  # training seconds of the earlier calls of a resumed run
    saved_step: int | None  # the last step checkpointed: what survives a divergence
    tokens_per_step: int
    eval_seconds: float = 0.0  # the last evaluation's and save's durations, to stop in time for both
    save_seconds: float = 0.0
    t_start: float = 0.0
    t_last: float = 0.0
    probe: Probe | None = None  # more figures for every evaluation (see `train`)
    batch: Any = None  # the next step's batch, drawn while the device works on this one
    after: dict[str, Any] | None = None  # the sampler as drawing `batch` left it

    def prefetch(self) -> None:
        """grad_accum batches from the shared sampler, stacked [grad_accum, B, T] on the device."""
        cfg = self.plan.train_config
        xs, ys = zip(*(self.sampler.next_batch() for _ in range(cfg.grad_accum)), strict=True)
        self.batch, self.after = self.trainer.batch(np.stack(xs), np.stack(ys)), self.sampler.state_dict()


def _set_up(
    plan: RunPlan,
    backend: str | Trainer,
    device: str,
    compile: bool,
    t_begin: float,
    max_seconds: float | None,
    log: Callable[[str], None],
    progress: bool,
    world: distributed.World,
    report_to: RecordSink | None = None,
) -> _Run:
    """The twin, the samplers (restored when resuming), the state to save, and the metrics log."""
    distributed.settle_batch(plan, world)  # a resume with another world size keeps the global batch
    cfg, resumed = plan.train_config, plan.resume
    trainer = make_trainer(backend, device, cfg.dtype, compile) if isinstance(backend, str) else backend
    for note in plan.notes:
        log(note)
    restored = trainer.start(plan, resumed)
    if resumed is not None and not restored and plan.model_config.dropout > 0:
        log(f"dropout RNG reseeded: {resumed.writer} wrote the checkpoint; its RNG does not carry over")

    block = plan.model_config.block_size
    sampler = BatchSampler(
        plan.train_tokens,
        cfg.batch_size,
        block,
        cfg.seed,
        world.rank,
        world.size,
        plan.train_mask,
        plan.train_starts,
    )
    if resumed is not None:
        try:
            sampler.load_state_dict(resumed.sampler)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"{plan.ckpt_dir / train_state.STATE_DIR}: cannot resume the sampler: {e}"
            ) from None
    val_sampler = BatchSampler(  # rank 0's
        plan.val_tokens, cfg.batch_size * world.size, block, cfg.seed, loss_mask=plan.val_mask
    )
    val_batches = [trainer.batch(x, y) for x, y in val_sampler.eval_batches(cfg.eval_batches)]

    state = resumed or TrainState(0, 0, cfg, plan.model_config, {}, tokenizer_sha256=plan.tokenizer_sha256)
    state.train_config, state.writer = cfg, trainer.writer
    state.device, state.dtype, state.data_dir = trainer.device, trainer.dtype, str(plan.data_dir)
    if plan.lora is not None:
        state.lora, state.base = plan.lora.to_dict(), str(plan.init_from)
    start = state.step
    tokens_per_step = world.size * cfg.grad_accum * cfg.batch_size * block
    metrics = (
        MetricsLog(plan.metrics_path, start if resumed else None, report_to)
        if world.main
        else distributed.NullLog()
    )
    metrics.write(
        {
            "event": "resume" if resumed else "start",
            "step": start,
            "backend": trainer.writer,
            "device": trainer.device,
            "dtype": trainer.dtype,
            "world_size": world.size,
            # the run's whole configuration, so the log alone names what was trained (jai plot, reporters)
            "config": {"model": dataclasses.asdict(plan.model_config), "train": cfg.to_dict()},
        }
    )
    log(
        f"{trainer.description}, {trainer.dtype}: {plan.model_config.num_params():,} parameters, "
        f"{tokens_per_step:,} tokens/step, {'resuming at' if resumed else 'starting from'} step {start}"
    )
    return _Run(
        plan,
        trainer,
        world,
        sampler,
        val_batches,
        state,
        metrics,
        log,
        progress,
        t_begin,
        max_seconds,
        start=start,
        elapsed_before=state.elapsed_seconds,
        saved_step=resumed and resumed.step,
        tokens_per_step=tokens_per_step,
    )


def _evaluate_untrained(run: _Run) -> float | None:
    """nanoGPT's step-0 evaluation: the untrained baseline (rank 0 alone evaluates). Under --max-seconds
    it takes at most EVAL_SHARE of the budget, and later evaluations use as many batches as it did."""
    cfg = run.plan.train_config
    if run.plan.resume is not None or cfg.max_steps <= 0 or not run.world.main:
        return None
    t_eval = time.perf_counter()
    budget = None if run.max_seconds is None else EVAL_SHARE * run.max_seconds
    val_loss, used = evaluate(run.trainer, run.val_batches, run.progress, budget)
    if used < len(run.val_batches):
        batches = len(run.val_batches)
        run.log(f"evaluating on {used} of {batches} batches, to fit --max-seconds {run.max_seconds:g}")
        run.val_batches = run.val_batches[:used]
    figures = _probe(run)
    run.eval_seconds = time.perf_counter() - t_eval
    run.metrics.write({"step": 0, "val_loss": val_loss, "elapsed": 0.0, **figures})
    run.log(f"step 0: val loss {val_loss:.4f} (untrained){_shown(figures)}")
    return val_loss


def _step(run: _Run) -> tuple[Progress, float]:
    """One optimizer step, checked for divergence and logged; returns its report and when it ended."""
    cfg, state, plan = run.plan.train_config, run.state, run.plan
    lr = learning_rate(state.step, cfg)
    handle = run.trainer.step(run.batch, lr)
    sampler_state = run.after  # the sampler as this step leaves it, for a checkpoint after it
    if state.step + 1 < cfg.max_steps:  # the host draws the next batch while the device works
        run.prefetch()
    loss, norm = run.trainer.result(handle)  # the one wait for the device per step
    run.world.beat()  # a step completed: the watchdog's sign that every process is alive
    now = time.perf_counter()
    step = state.step + 1
    if not finite(loss, norm):
        run.metrics.write({"step": step, "event": "diverged", "loss": str(loss), "grad_norm": str(norm)})
        last = f"{state.loss:.4f} at step {state.step}" if state.loss is not None else "none"
        raise TrainingDiverged(
            f"training diverged at step {step}: loss {loss}, grad norm {norm} (last finite loss "
            f"{last}); this step was not saved and {kept_after_divergence(plan, run.saved_step)}"
        )
    tok_s = run.tokens_per_step / max(now - run.t_last, 1e-9)
    state.step, state.loss, state.sampler = step, loss, sampler_state
    state.tokens_seen += run.tokens_per_step
    state.elapsed_seconds = run.elapsed_before + now - run.t_start
    run.metrics.write(
        {
            "step": step,
            "loss": loss,
            "lr": lr,
            "grad_norm": norm,
            "tokens": state.tokens_seen,
            "elapsed": round(state.elapsed_seconds, 4),
            "tok_s": round(tok_s, 1),
        }
    )
    return Progress(step, loss, lr, norm, tok_s), now


def _out_of_time(run: _Run, now: float) -> bool:
    """Whether the next step (as long as the one that ended at `now`) would leave no time for the final
    evaluation and save. The ranks decide together: their clocks differ, and one stopping alone would
    leave the rest waiting."""
    needed = now - run.t_last + run.eval_seconds + run.save_seconds
    return run.max_seconds is not None and run.world.any(now - run.t_begin + needed >= run.max_seconds)


def _evaluate(run: _Run, report: Progress) -> None:
    """Validation loss after `report`'s step, into the state (best so far too), the metrics and the log."""
    state = run.state
    t_eval = time.perf_counter()
    state.val_loss, _ = evaluate(run.trainer, run.val_batches, run.progress)
    figures = _probe(run)
    report.val_loss, run.eval_seconds = state.val_loss, time.perf_counter() - t_eval
    if state.best_val_loss is None or state.val_loss < state.best_val_loss:
        state.best_val_loss = state.val_loss
    record = {"step": report.step, "val_loss": state.val_loss, "elapsed": round(state.elapsed_seconds, 4)}
    run.metrics.write({**record, "tokens": state.tokens_seen, **figures})
    run.log(
        f"step {report.step}: train loss {report.loss:.4f}, val loss {state.val_loss:.4f}{_shown(figures)}"
    )


def _probe(run: _Run) -> dict[str, float]:
    if run.probe is None:
        return {}
    with eval_mode(run.trainer.model):
        return run.probe(run.trainer.model)


def _shown(figures: dict[str, float]) -> str:
    return "".join(f", {name} {value:.3f}" for name, value in figures.items())


def _checkpoint(run: _Run, step: int) -> None:
    """Save the run (weights checked sane first, so a diverging run never overwrites a good checkpoint)."""
    t_save = time.perf_counter()
    check_weights(run.trainer, step, run.plan, run.saved_step)
    run.trainer.save(run.plan.ckpt_dir, run.state, run.plan.tokenizer)
    run.saved_step, run.save_seconds = step, time.perf_counter() - t_save


def _finish(run: _Run, initial_val_loss: float | None, stopped: str) -> dict[str, Any]:
    """The run's summary: what `jai train` prints and `train` returns."""
    state, trainer, plan = run.state, run.trainer, run.plan
    seconds = time.perf_counter() - run.t_start
    return {
        "backend": trainer.writer,
        "device": trainer.description,
        "dtype": trainer.dtype,
        "start_step": run.start,
        "step": state.step,
        "stopped": stopped,
        "loss": state.loss,
        "initial_val_loss": initial_val_loss,
        "val_loss": state.val_loss,
        "best_val_loss": state.best_val_loss,
        "tokens_seen": state.tokens_seen,
        "elapsed_seconds": state.elapsed_seconds,
        "tokens_per_sec": (state.step - run.start) * run.tokens_per_step / max(seconds, 1e-9),
        "ckpt": str(plan.ckpt_dir),
        "metrics": str(plan.metrics_path),
        "rank": run.world.rank,  # of world.size processes; only rank 0 logged, evaluated and saved
        "world_size": run.world.size,
    }


def check_weights(trainer: Trainer, step: int, plan: RunPlan, saved_step: int | None) -> None:
    """Refuse to save weights a diverging update has thrown off: a checkpoint is kept only while good."""
    largest = trainer.max_abs_weight()
    if finite(largest) and largest <= MAX_SANE_WEIGHT:
        return
    raise TrainingDiverged(
        f"training diverged by step {step}: the largest weight is {largest:.3g} (sane weights stay below "
        f"{MAX_SANE_WEIGHT:g}); this step was not saved and {kept_after_divergence(plan, saved_step)}"
    )


def kept_after_divergence(plan: RunPlan, saved_step: int | None) -> str:
    """What a diverged run leaves, and the way on from there: --resume only where there is a checkpoint."""
    if saved_step is None:
        return "no checkpoint had been written yet; start again with a lower --lr"
    kept = f"the last good checkpoint, {plan.ckpt_dir} (step {saved_step}), is kept"
    return f"{kept}; resume with a lower --lr"
