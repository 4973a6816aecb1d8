"""`jai fuse ADAPTER OUT`: merge a LoRA adapter into its base model, as an ordinary checkpoint.

Framework-free: the merge is W [in, out] += (alpha / r) * (B @ A).T on the base's file tensors, in
float64, written back in the base's dtype (jai/checkpoint/lora.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safetensors.numpy import load_file, save_file

from jai.checkpoint import hf_files, lora, weights
from jai.checkpoint.folder import open_adapter
from jai.errors import InputError

EPILOG = """\
examples:
  jai train --init-from out/run/ckpt --out out/lora --lora 8    # train an adapter (PEFT's format)
  jai fuse out/lora/ckpt out/fused                              # base + adapter -> one checkpoint
  jai fuse out/lora out/fused --base /elsewhere/base            # the base moved since training
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai fuse",
        description="Merge a LoRA adapter (adapter_config.json + adapter_model.safetensors) into its base.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("adapter", help="the adapter dir (a LoRA run's ckpt/, or the run dir holding it)")
    p.add_argument("out", help="where to write the merged checkpoint (must not exist)")
    p.add_argument("--base", help="the base checkpoint (default: the one adapter_config.json names)")
    return p


def fuse(adapter_dir: str | Path, out: str | Path, base: str | Path | None = None) -> Path:
    out = Path(out)
    if out.exists():
        raise InputError(f"{out}: already exists; jai fuse writes a new checkpoint")
    adapter = open_adapter(adapter_dir, base)
    fused = lora.fuse(load_file(adapter.base_dir / weights.WEIGHTS_FILE), adapter.lora, adapter.tensors)
    tokenizer = next(
        (
            d / weights.TOKENIZER_FILE
            for d in (adapter.dir, adapter.base_dir)
            if (d / weights.TOKENIZER_FILE).is_file()
        ),
        None,
    )
    hf_files.save_checkpoint(
        out, adapter.model, "jai.fuse", lambda p: save_file(fused, p, metadata=weights.METADATA), tokenizer
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = fuse(args.adapter, args.out, args.base)
    print(f"wrote {out}: the base with the adapter merged in, an ordinary checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
