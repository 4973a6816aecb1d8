"""`jai convert`: move weights between JAI checkpoints, Hugging Face GPT-2, nanoGPT and PyTorch state dicts.

Also runs as `python -m jai.convert.cli`. Errors are reported by the `jai` dispatcher (jai/cli/__init__.py),
one line on stderr, as in every command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jai.convert import ConversionError
from jai.errors import warnings_as_lines

PROG = "jai convert"

DESCRIPTION = """\
Move GPT-2 weights in and out of JAI. Formats:

  jai checkpoint dir  config.json + model.safetensors (+ tokenizer.json and its Hugging Face files):
                      the original GPT-2 hub layout, so transformers (GPT2LMHeadModel.from_pretrained)
                      and mlx-lm open it directly, and both twins (MLX and PyTorch) save and load it: no
                      conversion is needed between the twins, or from JAI to Hugging Face.
  hf dir              a Hugging Face GPT-2 directory: config.json + model.safetensors (sharded or not)
                      or pytorch_model.bin; keys with or without `transformer.`, tied lm_head.
                      Needs no torch unless only pytorch_model.bin is there.
  mlx-lm dir          what mlx_lm.convert / mlx_lm.fuse save for a GPT-2 (names under `model.`, Linear
                      layout), plain or quantized (dequantized on the way in).
  nanogpt ckpt.pt     nanoGPT's train.py checkpoint {model, model_args, ...}: Linear [out, in]
                      layout, tied lm_head, bias=True only. The import keeps nanoGPT's exact (erf) GELU
                      (activation_function "gelu"); exporting a tanh-GELU model warns. Needs torch.
  torch state dict    a .pt file holding nanoGPT's model state dict alone (transformer.* names,
                      Linear layout, lm_head.weight tied), for code that calls load_state_dict.
                      Needs torch.

Pickled files are only ever read with torch.load(weights_only=True); anything else is refused.
In Python, convert.twins.mlx_to_torch / torch_to_mlx hand a live model to the other twin, bit for bit.
For llama.cpp and Ollama, see `jai export gguf --help`.
"""

DTYPE_HELP = """\
dtype:
  --dtype F32|BF16|F16 (also fp32, bf16, fp16, float32, bfloat16, float16) casts the weights,
  rounding to nearest even. Without it the stored dtype is kept (a source mixing dtypes becomes F32).
"""

# (one-line help, source metavar, destination metavar, examples): each command's --help shows its own.
COMMANDS = {
    "from-hf": (
        "Hugging Face GPT-2 dir -> JAI checkpoint dir",
        "SRC_DIR",
        "OUT_DIR",
        [
            "jai convert from-hf ~/hf/gpt2 out/gpt2                  # HF GPT-2 -> JAI checkpoint",
            "jai convert from-hf out/gpt2 out/gpt2-bf16 --dtype bf16  # cast a JAI checkpoint (an hf dir)",
        ],
    ),
    "from-mlx-lm": (
        "mlx-lm's saved GPT-2 dir (plain or quantized) -> JAI checkpoint dir",
        "MLX_DIR",
        "OUT_DIR",
        [
            "mlx_lm.convert --hf-path out/model --mlx-path mlx_model -q  # mlx-lm's own command",
            "jai convert from-mlx-lm mlx_model out/from-mlx               # dequantized back into JAI",
        ],
    ),
    "from-nanogpt": (
        "nanoGPT ckpt.pt -> JAI checkpoint dir",
        "CKPT_PT",
        "OUT_DIR",
        ["jai convert from-nanogpt out-shakespeare/ckpt.pt out/shakes --tokenizer tokenizer.json"],
    ),
    "to-nanogpt": (
        "JAI checkpoint dir -> nanoGPT ckpt.pt (sample.py loads it)",
        "CKPT_DIR",
        "OUT_PT",
        [
            "jai convert to-nanogpt out/model nanogpt-out/ckpt.pt",
            "python sample.py --out_dir=nanogpt-out  # (in nanoGPT) samples from it",
        ],
    ),
    "to-state-dict": (
        "JAI checkpoint dir -> .pt holding nanoGPT's model state dict",
        "CKPT_DIR",
        "OUT_PT",
        ["jai convert to-state-dict out/model model_state.pt --dtype F32"],
    ),
}
ARG_HELP = {
    "SRC_DIR": "Hugging Face GPT-2 directory (a JAI checkpoint is one too)",
    "MLX_DIR": "directory mlx-lm saved (mlx_lm.convert --mlx-path, mlx_lm.fuse --save-path)",
    "CKPT_PT": "nanoGPT checkpoint file (ckpt.pt)",
    "CKPT_DIR": "JAI checkpoint directory",
    "OUT_DIR": "JAI checkpoint directory to write (atomically)",
    "OUT_PT": ".pt file to write (atomically)",
}


def _examples(*names: str) -> str:
    lines = [f"  {line}" for name in names for line in COMMANDS[name][3]]
    return "examples:\n" + "\n".join(lines) + "\n"


EPILOG = f"""\
{DTYPE_HELP}
{_examples(*COMMANDS)}
Run `jai convert <command> --help` for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_, src, dst, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, epilog=f"{DTYPE_HELP}\n{_examples(name)}")
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.add_argument("src", metavar=src, type=Path, help=ARG_HELP[src])
        p.add_argument("dst", metavar=dst, type=Path, help=ARG_HELP[dst])
        p.add_argument(
            "--dtype",
            metavar="DTYPE",
            help="F32, BF16 or F16 (aliases: fp32, bf16, fp16, ...); default: keep the stored dtype",
        )
        p.add_argument("--force", action="store_true", help="replace the output if it exists")
        if name.startswith("from-"):
            p.add_argument(
                "--tokenizer",
                metavar="JSON",
                type=Path,
                help="tokenizer.json to store in the checkpoint (default: the source's own, if it has one)",
            )
    return parser


def _run(args: argparse.Namespace) -> str:
    """Do the conversion; return the line to print on success."""
    if args.command not in ("from-hf", "from-mlx-lm"):  # these need torch only for pytorch_model.bin
        try:
            import torch
        except ImportError:
            raise ConversionError(
                f"{args.command} needs PyTorch: pip install -e '.[torch]' (CPU-only machines: add "
                "`-c constraints/cpu.txt`)"
            ) from None
    if args.command == "from-hf":
        from jai.convert.hf import import_hf

        done = import_hf(args.src, args.dst, args.dtype, args.tokenizer, args.force)
    elif args.command == "from-mlx-lm":
        from jai.convert.mlxlm import import_mlx_lm

        done = import_mlx_lm(args.src, args.dst, args.dtype, args.tokenizer, args.force)
    elif args.command == "from-nanogpt":
        from jai.convert.nanogpt import import_nanogpt

        done = import_nanogpt(args.src, args.dst, args.dtype, args.tokenizer, args.force)
    elif args.command == "to-nanogpt":
        from jai.convert.nanogpt import export_nanogpt

        export_nanogpt(args.src, args.dst, args.dtype, args.force)
        return f"wrote {args.dst} (nanoGPT checkpoint)"
    else:
        import torch

        from jai.atomic import atomic_file
        from jai.convert.hf import check_destination
        from jai.convert.nanogpt import export_state_dict

        check_destination(args.dst, args.force, directory=False)
        state = export_state_dict(args.src, args.dtype)
        with atomic_file(args.dst) as tmp:
            torch.save(state, tmp)
        return f"wrote {args.dst} (PyTorch state dict, {len(state)} tensors)"
    for note in done.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    cfg = done.config
    return (
        f"wrote {done.path} ({done.dtype}, {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, "
        f"vocab {cfg.vocab_size}, context {cfg.block_size}, {cfg.num_params():,} parameters)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    from jai.convert.nanogpt import ActivationMismatchWarning  # framework-free at import

    with warnings_as_lines(PROG, ActivationMismatchWarning):  # an error goes on to the `jai` dispatcher
        line = _run(args)
    print(line)
    return 0


if __name__ == "__main__":  # `python -m jai.convert.cli` reports errors as `jai convert` does
    from jai.cli import main as jai

    sys.exit(jai(["convert", *sys.argv[1:]]))
