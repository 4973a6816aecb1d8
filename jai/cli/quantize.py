"""`jai quantize`: a float checkpoint -> a quantized one in mlx-lm's affine format (see
jai/checkpoint/quant.py).

The packing is NumPy (jai/checkpoint/quant_pack.py, code for code what `mx.quantize` writes), so this command
needs neither twin: a checkpoint trained on a CUDA box with PyTorch alone quantizes there too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from jai.checkpoint import quant
from jai.checkpoint.quant import QuantError, QuantSpec
from jai.checkpoint.quant_file import quantize_checkpoint
from jai.checkpoint.weights import WEIGHTS_FILE

EPILOG = """\
examples:
  jai quantize out/run/ckpt out/q8 --bits 8
  jai quantize out/run/ckpt out/q4 --bits 4 --group-size 32
  jai sample out/q4 --question "What does this job require?" --doc-file posting.md
  python -c "from mlx_lm import load; load('out/q4')"     # mlx-lm opens it as is

Every matrix (wte, wpe, the attention and MLP projections) is stored as `bits`-bit codes with one scale
and bias per `group-size` weights of a row; LayerNorms and biases stay float. Both twins (and `jai sample`,
`jai serve`, `jai eval`, `jai bench`) load the result; training needs the float checkpoint.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai quantize",
        description="Quantize a JAI checkpoint to 8 or 4 bits in mlx-lm's affine format.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a float checkpoint directory (e.g. out/run/ckpt)")
    p.add_argument("out", help="the new directory to write (must not exist)")
    p.add_argument("--bits", type=int, required=True, help="bits per weight: 8 or 4")
    p.add_argument(
        "--group-size",
        type=int,
        default=64,
        help="weights sharing one scale and bias, along a row: 32, 64 or 128 (default: %(default)s)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    spec = QuantSpec(bits=args.bits, group_size=args.group_size)
    src, out = Path(args.checkpoint), Path(args.out)
    if not src.is_dir():
        raise QuantError(f"{src}: no such checkpoint directory")
    if out.exists():
        raise QuantError(f"{out}: already exists; give a new directory for the quantized checkpoint")
    bar = tqdm(desc="quantize", unit="matrix", disable=None)  # no bar when stderr is not a terminal
    quantize_checkpoint(src, out, spec, progress=lambda layer: bar.update(1))
    bar.close()
    before, after = (src / WEIGHTS_FILE).stat().st_size, (out / WEIGHTS_FILE).stat().st_size
    print(
        f"{out}: {spec.describe()}, {len(quant.quantized_layers(quant.inspect_quantized(out)[0]))} matrices; "
        f"{WEIGHTS_FILE} {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({before / after:.1f}x smaller)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    # Errors (JaiError) go up to the `jai` dispatcher, which reports them all alike.
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
