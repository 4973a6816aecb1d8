"""Is this folder a checkpoint JAI can use, float or quantized? Checked end to end, without a framework.

Above the contract (jai/checkpoint/weights.py) and the quantized layout (jai/checkpoint/quant.py), below
recovery: a folder that is missing here is missing (jai/checkpoint/folder.py recovers it first).
"""

from __future__ import annotations

import os
from pathlib import Path

from jai.checkpoint import quant, weights
from jai.config import GPTConfig


def inspect_checkpoint(ckpt_dir: str | os.PathLike, quantized: bool = False) -> tuple[GPTConfig, str]:
    """Validate a checkpoint directory end to end; return its config and (float) dtype.

    A quantized checkpoint (`jai quantize`, jai/checkpoint/quant.py) passes only when the caller can run
    one (`quantized`): training and converting need the float weights.
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise weights.CheckpointError(f"{ckpt_dir}: not a directory")
    spec = quant.read_spec(ckpt_dir)
    if spec is not None:
        if not quantized:
            raise quant.QuantError(
                f"{ckpt_dir}: a quantized checkpoint ({spec.describe()}); this needs the float checkpoint "
                "it was made from"
            )
        cfg, _, dtype = quant.inspect_quantized(ckpt_dir)
        return cfg, dtype
    cfg = weights.read_config(ckpt_dir)
    path = ckpt_dir / weights.WEIGHTS_FILE
    return cfg, weights.check_tensors(weights.read_header(path), cfg, path)
