"""`jai train`: train a JAI model with either twin (MLX or PyTorch), resumable, time-boundable.

The twin is imported only once chosen, so `--backend torch` never loads MLX and the other way round.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from jai.checkpoint.folder import open_config
from jai.checkpoint.lora import LoraConfig
from jai.checkpoint.recovery import recover_checkpoint
from jai.checkpoint.train_state import CKPT_DIR, DEFAULT_DATA, STATE_DIR, read_state_json
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError, GPTConfig
from jai.dataset import DatasetError
from jai.devices import BACKENDS, DTYPES, DeviceError, default_backend, twin_module
from jai.reporting import report_to as reporting
from jai.train_config import TrainConfig
from jai.training.distributed import DEFAULT_TIMEOUT, HUNG_EXIT, launcher_rank
from jai.training.loop import train
from jai.training.plan import recorded_data_dir

EPILOG = """\
examples:
  jai train                                        # out/data -> out/run, 6 layers x 384, context 256
  jai train --backend torch --device cuda --max-steps 5000 --batch-size 32
  jai train --max-seconds 600                      # stop (with a checkpoint) after ten minutes
  jai train --resume                               # continue out/run exactly where it stopped, on its data
  jai train --backend torch --compile              # torch.compile the forward pass (no gain on CPU)
  jai train --report-to tensorboard,wandb          # also to TensorBoard and W&B (offline), as it trains
  jai train --init-from out/run/ckpt --out out/ft --lr 1e-4 --max-steps 500
  jai train --init-from out/run/ckpt --out out/lora --lora 8 --lr 1e-3   # a PEFT LoRA adapter alone
  jai fuse out/lora/ckpt out/fused                 # merge the adapter into an ordinary checkpoint
  torchrun --standalone --nproc-per-node 2 $(which jai) train --backend torch   # data parallel, 2 processes
  mlx.launch -n 2 -- jai train --backend mlx       # the same in MLX (see docs/distributed.md)

Data parallel: a process that completes no step for JAI_DIST_TIMEOUT seconds (default {timeout:g}: a
stuck or frozen peer) ends the run with one line and exit status {hung}; raise it for evaluations or saves
that take longer. Rank 0's exit status tells whether the run finished (mlx.launch itself exits 0).

A run writes <out>/ckpt (the latest checkpoint: config.json, model.safetensors, tokenizer.json, which
transformers, mlx-lm and `jai sample` open as a GPT-2, plus train_state/ for --resume) and
<out>/metrics.jsonl (one JSON line per step and per evaluation; --report-to shows it in
<out>/tensorboard and <out>/wandb too, and `jai plot` draws runs side by side). A run started with one
backend can be resumed with the other. Interrupt it any way you like, `kill -9` included: --resume continues
from the last checkpoint and, on the same backend and device, ends with exactly the weights of an
uninterrupted run.
"""

MODEL_FLAGS = {
    "n_layer": (int, "transformer blocks"),
    "n_head": (int, "attention heads (must divide --n-embd)"),
    "n_embd": (int, "embedding width"),
    "block_size": (int, "context length in tokens"),
    "dropout": (float, "dropout probability while training"),
}
TRAIN_HELP = {
    "batch_size": "sequences per micro-batch",
    "align_samples": "start every training window at a sample's [BOS], so each holds a question, its posting "
    "and its answer in order, instead of at random offsets (default: off)",
    "mask_prompt": "the loss on the answers alone ([ANSWER] ... [/ANSWER]), not on questions and postings "
    "(default: off)",
    "prompt_loss": "share of the targets outside answers (postings, questions) that count in the loss, "
    "the same positions every run; 1 counts them all; the head computes only the rows that count",
    "grad_accum": "micro-batches per optimizer step (tokens/step = grad_accum x batch_size x block_size)",
    "max_steps": "optimizer steps; the cosine schedule ends here",
    "lr": "peak learning rate, reached after the warmup",
    "min_lr": "learning rate at the end of the cosine decay",
    "warmup_steps": "steps of linear warmup",
    "weight_decay": "AdamW decoupled weight decay, on 2-D weights only",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "eps": "Adam epsilon",
    "grad_clip": "clip the global gradient norm to this (0: no clipping)",
    "eval_interval": "evaluate on val.bin every this many steps (and at the end)",
    "eval_batches": "batches per evaluation (the same fixed batches every time)",
    "ckpt_interval": "save <out>/ckpt every this many steps (and at the end)",
    "seed": "seed for the initial weights, the batch order and dropout",
}
EXPECTED_ERRORS = (
    CheckpointError,
    ConfigError,
    DatasetError,
    DeviceError,
    FileNotFoundError,
    NotADirectoryError,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai train",
        description="Train a JAI GPT on token files from `jai prepare`, with the MLX or the PyTorch twin.",
        epilog=EPILOG.format(timeout=DEFAULT_TIMEOUT, hung=HUNG_EXIT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default_backend(),
        help="which twin trains (default here: %(default)s; MLX on Apple silicon, PyTorch elsewhere)",
    )
    run.add_argument(
        "--data",
        metavar="DIR",
        help=f"data dir from `jai prepare` (default: {DEFAULT_DATA}; with --resume, the run's own data)",
    )
    run.add_argument(
        "--out",
        default="out/run",
        metavar="DIR",
        help="run dir for ckpt/ and metrics.jsonl (default: %(default)s)",
    )
    run.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "gpu", "cuda", "mps"),
        help="auto (default): the GPU if there is one, else the CPU. MLX: cpu|gpu; PyTorch: cpu|cuda|mps",
    )
    run.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPES,
        help="auto (default): bfloat16 on a GPU that supports it, float32 on the CPU",
    )
    run.add_argument(
        "--max-seconds",
        type=float,
        metavar="S",
        help="stop after S seconds of training, with a checkpoint, to --resume later (default: no limit)",
    )
    run.add_argument(
        "--eval-answers",
        type=int,
        default=0,
        metavar="N",
        help="at every evaluation, also answer N held-out questions (greedy, spread over kinds and "
        "languages) "
        "and record their scores in metrics.jsonl: the answer curve of the run (default: 0, off)",
    )
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    run.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start a new run from this checkpoint's weights (fresh optimizer, step 0)",
    )
    run.add_argument(
        "--compile",
        action="store_true",
        help="PyTorch twin: torch.compile the model's forward pass (the MLX step is always compiled)",
    )
    lora = p.add_argument_group("LoRA (train an adapter on the frozen --init-from model; PEFT's format)")
    lora.add_argument("--lora", type=int, metavar="RANK", help="train a rank-RANK LoRA adapter instead")
    lora.add_argument(
        "--lora-alpha", type=float, metavar="A", help="LoRA scale alpha / rank (default: 2 x rank)"
    )
    lora.add_argument(
        "--lora-targets",
        default="c_attn",
        metavar="LAYERS",
        help="comma-separated layers to adapt: c_attn, c_proj, c_fc (default: %(default)s)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar (the log lines remain)")
    run.add_argument(
        "--report-to",
        action="append",
        metavar="WHERE",
        help="also report the run to tensorboard (<out>/tensorboard) or wandb (offline, <out>/wandb; "
        "`wandb sync` uploads it): repeat the flag or separate with commas; none (default) for neither",
    )

    shape = GPTConfig()
    model = p.add_argument_group(
        "model shape (new runs; the vocabulary size comes from the data; --resume keeps the checkpoint's)"
    )
    for name, (kind, help_) in MODEL_FLAGS.items():
        default = getattr(shape, name)
        model.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            metavar="N" if kind is int else "P",
            help=f"{help_} (default: {default})",
        )

    defaults = TrainConfig()
    train = p.add_argument_group("training (--resume keeps the checkpoint's values unless given)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "dtype":
            continue  # --dtype, above
        default = getattr(defaults, f.name)
        kind = type(default)
        if kind is bool:  # --mask-prompt / --no-mask-prompt; None when not given, like the others
            flag = f"--{f.name.replace('_', '-')}"
            train.add_argument(flag, action=argparse.BooleanOptionalAction, help=TRAIN_HELP[f.name])
            continue
        train.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            metavar="N" if kind is int else "X",
            help=f"{TRAIN_HELP[f.name]} (default: {default})",
        )
    return p


def _given(args: argparse.Namespace, names: Any) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _configs(args: argparse.Namespace, dtype: str) -> tuple[GPTConfig | None, TrainConfig | None]:
    """The model and training configs to pass on: flags over the checkpoint's values, or over the defaults."""
    shape = _given(args, MODEL_FLAGS)
    settings = _given(args, [f.name for f in dataclasses.fields(TrainConfig) if f.name != "dtype"])
    settings["dtype"] = dtype
    ckpt = Path(args.out) / CKPT_DIR
    if args.resume:
        if launcher_rank() == 0:  # rank 0 alone repairs; the others read what it restored, or wait in train()
            note = recover_checkpoint(ckpt)  # a save interrupted between its two renames
            if note:
                print(note, file=sys.stderr)
        if not ckpt.exists():
            return None, None  # train() explains that there is nothing to resume
        model_cfg = open_config(ckpt).replace(**shape) if shape else None
        return model_cfg, read_state_json(ckpt).train_config.replace(**settings)
    if args.init_from:
        model_cfg = open_config(args.init_from).replace(**shape) if shape else None
        return model_cfg, TrainConfig(**settings)
    return GPTConfig(**shape), TrainConfig(**settings)


def _lora(args: argparse.Namespace) -> LoraConfig | None:
    if args.lora is None:
        return None
    alpha = args.lora_alpha if args.lora_alpha is not None else 2.0 * args.lora
    targets = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    return LoraConfig(rank=args.lora, alpha=alpha, targets=targets, seed=args.seed or TrainConfig().seed)


def _answer_probe(args: argparse.Namespace) -> Any:
    """--eval-answers: the held-out questions of the data this run trains on (jai.cli.eval.answer_probe)."""
    if args.eval_answers < 0:
        raise ConfigError(f"--eval-answers must be >= 0, got {args.eval_answers}")
    if not args.eval_answers:
        return None
    from jai.cli.eval import answer_probe  # the twin's decoding loads only when asked for

    data = args.data or recorded_data_dir(Path(args.out) / CKPT_DIR, args.resume)
    return answer_probe(data, args.backend, args.eval_answers)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Errors (JaiError, a missing extra) go up to the `jai` dispatcher, which reports them for every command.
    devices = twin_module(args.backend, "device")
    report_to = reporting.reporters(reporting.parse(args.report_to), args.out)  # a missing extra: now
    try:
        device = devices.resolve_device(args.device)
        try:
            model_cfg, train_cfg = _configs(args, devices.default_dtype(device, args.dtype))
        except (TypeError, ValueError) as e:
            if isinstance(e, EXPECTED_ERRORS):
                raise
            raise ConfigError(f"bad setting: {e}") from None  # TrainConfig refusing its values
        summary = train(
            args.backend,
            args.data,
            args.out,
            model_cfg,
            train_cfg,
            device=device,
            resume=args.resume,
            init_from=args.init_from,
            max_seconds=args.max_seconds,
            progress=not args.no_progress,
            compile=args.compile,
            lora=_lora(args),
            probe=_answer_probe(args),
            report_to=report_to,
        )
    except KeyboardInterrupt:
        # a checkpoint saved by this run or an earlier one in --out: only then is there something to resume
        saved = (Path(args.out) / CKPT_DIR / STATE_DIR).is_dir()
        how = (
            f"`--resume --out {args.out}` continues from the last checkpoint"
            if saved
            else "no checkpoint was saved"
        )
        print(f"\njai train: interrupted; {how}", file=sys.stderr)
        return 130
    if summary.get("rank", 0) != 0:
        return 0  # data-parallel: rank 0 reports the run
    val, initial = summary["val_loss"], summary["initial_val_loss"]
    untrained = f" (untrained {initial:.4f})" if initial is not None else ""
    print(
        f"step {summary['step']} ({summary['stopped']}), val loss {val:.4f}{untrained}, "
        f"{summary['tokens_per_sec']:,.0f} tokens/s; checkpoint: {summary['ckpt']}"
        if val is not None
        else f"step {summary['step']}; checkpoint: {summary['ckpt']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
