"""What a run starts from, worked out before any framework is touched: the data, the checkpoint to resume
or start from, and the model and training configs, checked against each other."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer as HFTokenizer

from jai.checkpoint import folder, weights
from jai.checkpoint.lora import LoraConfig, init_adapter, read_adapter
from jai.checkpoint.recovery import recover_checkpoint
from jai.checkpoint.train_state import (
    CKPT_DIR,
    DEFAULT_DATA,
    METRICS_FILE,
    STATE_DIR,
    STATE_FILE,
    TrainState,
    _differences,
    has_train_state,
    read_state_json,
    read_train_state,
)
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError, GPTConfig
from jai.dataset import META_FILE, DatasetError, TokenBin, answer_mask, sampled_targets
from jai.prompt import ANSWER, ANSWER_END
from jai.train_config import TrainConfig


@dataclass
class RunPlan:
    """What a run starts from, worked out before any framework is touched (see `plan_run`)."""

    model_config: GPTConfig
    train_config: TrainConfig
    data_dir: Path
    train_tokens: np.ndarray  # memmaps of train.bin and val.bin
    val_tokens: np.ndarray
    ckpt_dir: Path
    metrics_path: Path
    tokenizer: Path | None  # copied into every checkpoint, so it is self-contained
    tokenizer_sha256: str | None
    resume: TrainState | None = None  # with `moments`, when continuing a run
    moments: dict[str, np.ndarray] | None = None
    init_from: Path | None = None  # a checkpoint whose weights start a new run
    notes: list[str] = field(default_factory=list)  # things the log should say (changed settings)
    lora: LoraConfig | None = None  # train a LoRA adapter on the frozen `init_from` (jai/checkpoint/lora.py)
    adapter: dict[str, np.ndarray] | None = None  # its tensors: freshly initialised, or resumed
    train_mask: np.ndarray | None = None  # --mask-prompt: which targets count (jai.dataset.answer_mask)
    val_mask: np.ndarray | None = None
    train_starts: np.ndarray | None = None  # --align-samples: where windows may begin

    @property
    def weights_from(self) -> Path | None:
        """The checkpoint the model's weights come from: the run's own when resuming a full run; the
        base (init_from) for a new run from a checkpoint and for every LoRA run; None for a new model."""
        return self.ckpt_dir if self.resume is not None and self.lora is None else self.init_from


def plan_run(
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    model_cfg: GPTConfig | None,
    train_cfg: TrainConfig | None,
    resume: bool = False,
    init_from: str | os.PathLike | None = None,
    lora: LoraConfig | None = None,
) -> RunPlan:
    """Check the data, the checkpoint and the configs against each other, and settle the configs.

    - The vocabulary (and the special-token ids) come from the data's meta.json, whatever `model_cfg` says.
    - A new run needs `model_cfg` (default: GPTConfig()) and refuses an out dir that already holds a
      checkpoint; `resume` needs that checkpoint, and refuses a `model_cfg` or data that disagree with it.
    - `train_cfg=None` means TrainConfig() for a new run and the checkpoint's own for a resumed one;
      settings that differ from the checkpoint's are allowed (a longer schedule, say) and noted.
    - `init_from` starts a new run (step 0, fresh optimizer) from a checkpoint's weights; with `lora`,
      a run that trains a LoRA adapter on those weights, frozen. A resumed LoRA run finds its base and
      adapter in its own checkpoint.
    - `data_dir` None: a resumed run's own data (recorded in its state), else `DEFAULT_DATA`.
    - Before any step: every token id of train.bin and val.bin lies inside the vocabulary, and the data's
      tokenizer.json is the one meta.json names (a model trained on ids past its embedding table crashes
      or learns garbage; a checkpoint carrying the wrong tokenizer decodes garbage).
    """
    out_dir = Path(out_dir)
    if resume and init_from is not None:
        raise ConfigError(
            "--resume continues this run's own checkpoint; it cannot be combined with --init-from"
        )
    ckpt_dir = out_dir / CKPT_DIR
    recovered = recover_checkpoint(ckpt_dir, owner=True)  # the caller holds the folder's RunLock
    data_dir = Path(data_dir if data_dir is not None else recorded_data_dir(ckpt_dir, resume))
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: no such data directory (make one with `jai prepare`)")
    train_bin, val_bin = TokenBin(data_dir / "train.bin"), TokenBin(data_dir / "val.bin")
    meta = train_bin.meta
    if meta is None:
        raise DatasetError(f"{data_dir / META_FILE}: no such file; the model's vocabulary size comes from it")
    tokenizer = data_dir / weights.TOKENIZER_FILE
    check_tokenizer(tokenizer, meta.get("tokenizer_sha256"), data_dir / META_FILE)
    ids = {f"{k}_token_id": meta.get(f"{k}_id") for k in ("bos", "eos", "pad")}

    def with_data(cfg: GPTConfig) -> GPTConfig:
        return cfg.replace(vocab_size=meta["vocab_size"], **ids)

    plan = RunPlan(
        model_config=GPTConfig(),
        train_config=train_cfg or TrainConfig(),
        data_dir=data_dir,
        train_tokens=train_bin.data,
        val_tokens=val_bin.data,
        ckpt_dir=ckpt_dir,
        metrics_path=out_dir / METRICS_FILE,
        tokenizer=tokenizer if tokenizer.is_file() else None,
        tokenizer_sha256=meta.get("tokenizer_sha256"),
        notes=[recovered] if recovered else [],
    )
    if resume:
        if not ckpt_dir.exists():
            raise CheckpointError(
                f"{ckpt_dir}: no checkpoint to resume from (start a new run without --resume)"
            )
        state, moments = read_train_state(ckpt_dir)
        cfg = state.model_config
        _check_data(cfg, meta, state.tokenizer_sha256, ckpt_dir, data_dir)
        if model_cfg is not None and with_data(model_cfg) != cfg:
            raise CheckpointError(
                f"{ckpt_dir / weights.CONFIG_FILE}: the checkpoint's model disagrees with the one asked for: "
                f"{_differences(cfg, with_data(model_cfg))} (checkpoint vs asked)"
            )
        if train_cfg is not None and train_cfg != state.train_config:
            changes = _differences(state.train_config, train_cfg)
            plan.notes.append(f"resuming with changed training settings: {changes} (checkpoint vs now)")
        plan.model_config, plan.resume, plan.moments = cfg, state, moments
        plan.train_config = train_cfg or state.train_config
        if state.lora is not None:
            _resume_lora(plan, state, lora)
        elif lora is not None:
            raise ConfigError(f"{ckpt_dir}: a full training run; --lora starts a new run (--init-from)")
        return plan
    if ckpt_dir.exists():
        raise CheckpointError(
            f"{ckpt_dir}: this out dir already holds a run; pass --resume to continue it, "
            "or choose another --out"
        )
    if init_from is not None:
        cfg, _ = folder.open_checkpoint(init_from)
        _check_data(cfg, meta, None, Path(init_from), data_dir)
        if model_cfg is not None and with_data(model_cfg).replace(dropout=cfg.dropout) != cfg:
            raise CheckpointError(
                f"{Path(init_from) / weights.CONFIG_FILE}: the checkpoint's model disagrees with the one "
                f"asked for: {_differences(cfg, with_data(model_cfg))} (checkpoint vs asked; only dropout "
                "may change)"
            )
        plan.init_from = Path(init_from)
        plan.model_config = cfg.replace(dropout=model_cfg.dropout) if model_cfg else cfg
        if lora is not None:
            plan.lora, plan.adapter = lora, init_adapter(plan.model_config, lora)
        return plan
    if lora is not None:
        raise ConfigError("--lora trains an adapter on a trained model: name it with --init-from CKPT")
    plan.model_config = with_data(model_cfg or GPTConfig())
    return plan


def _check_data(
    cfg: GPTConfig, meta: dict[str, Any], sha: str | None, ckpt_dir: Path, data_dir: Path
) -> None:
    if cfg.vocab_size != meta["vocab_size"]:
        raise CheckpointError(
            f"{ckpt_dir / weights.CONFIG_FILE}: vocab_size {cfg.vocab_size}, but the data in {data_dir} has "
            f"vocab_size {meta['vocab_size']} (made with another tokenizer?)"
        )
    if sha is not None and meta.get("tokenizer_sha256") not in (None, sha):
        raise CheckpointError(
            f"{ckpt_dir / STATE_DIR / STATE_FILE}: the run was trained on data from another tokenizer "
            f"(sha256 {sha[:12]}..., {data_dir} has {str(meta['tokenizer_sha256'])[:12]}...)"
        )


def recorded_data_dir(ckpt_dir: Path, resume: bool) -> str:
    """The data a run was trained on, from its state (runs saved before JAI recorded it: DEFAULT_DATA)."""
    if resume and has_train_state(ckpt_dir):
        return read_state_json(ckpt_dir).data_dir or DEFAULT_DATA
    return DEFAULT_DATA


def check_tokenizer(path: Path, sha256: str | None, meta_path: Path) -> None:
    """`path` must hash to meta.json's tokenizer_sha256 (when both exist): the ids in the .bin files mean
    what this tokenizer says only if it is the one that made them."""
    if sha256 is None or not path.is_file():
        return
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != sha256:
        raise DatasetError(
            f"{path}: its sha256 is {found[:12]}..., but {meta_path} says the token files were made with "
            f"{sha256[:12]}...; run `jai prepare` again, or put back the tokenizer.json it wrote"
        )


def _resume_lora(plan: RunPlan, state: TrainState, asked: LoraConfig | None) -> None:
    """A LoRA run continues on its recorded base, which must still be the model it was trained on."""
    lora = LoraConfig.from_dict(state.lora)
    if asked is not None and asked != lora:
        raise ConfigError(f"{plan.ckpt_dir}: the run trains {lora}; --lora asked for {asked}")
    base = Path(state.base or "")
    cfg, _ = folder.open_checkpoint(base)
    if cfg.replace(dropout=state.model_config.dropout) != state.model_config:
        raise CheckpointError(
            f"{base / weights.CONFIG_FILE}: the LoRA run's base model changed since it was trained: "
            f"{_differences(state.model_config, cfg)} (run vs base)"
        )
    _, _, plan.adapter = read_adapter(plan.ckpt_dir, state.model_config)
    plan.lora, plan.init_from = lora, base


def add_sample_starts(plan: RunPlan) -> None:
    """--align-samples: the offset of every [BOS] in train.bin, where each sample begins."""
    bos = plan.model_config.bos_token_id
    if bos is None:
        raise DatasetError(f"{plan.data_dir / META_FILE}: no bos_id, so --align-samples cannot find samples")
    plan.train_starts = np.flatnonzero(np.asarray(plan.train_tokens) == bos)


def add_loss_masks(plan: RunPlan) -> None:
    """Which targets of train.bin count: under --mask-prompt the answers alone (jai.dataset.answer_mask),
    and val.bin's loss too; under --prompt-loss S < 1 every answer target and a fixed share S of the
    others, while val.bin's loss keeps every target, comparable with any other run's."""
    cfg = plan.train_config
    open_id, close_id = marker_ids(plan.data_dir, "--mask-prompt" if cfg.mask_prompt else "--prompt-loss")
    plan.train_mask = answer_mask(plan.train_tokens, open_id, close_id)
    if cfg.mask_prompt:
        plan.val_mask = answer_mask(plan.val_tokens, open_id, close_id)
        if not plan.train_mask.any():
            where = plan.data_dir / "train.bin"
            raise DatasetError(f"{where}: --mask-prompt, but no {ANSWER} ... {ANSWER_END} in it")
    else:
        plan.train_mask |= sampled_targets(len(plan.train_tokens), cfg.prompt_loss, cfg.seed)


def marker_ids(data_dir: Path, option: str = "--mask-prompt") -> tuple[int, int]:
    """The ids of [ANSWER] and [/ANSWER] in the data's tokenizer (`option` needs them, for errors)."""
    path = data_dir / weights.TOKENIZER_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; {option} finds the answers by their {ANSWER} marker")
    tokenizer = HFTokenizer.from_file(str(path))
    ids = tokenizer.token_to_id(ANSWER), tokenizer.token_to_id(ANSWER_END)
    if None in ids:
        raise DatasetError(f"{path}: no {ANSWER} / {ANSWER_END} tokens, so {option} cannot find answers")
    return ids
