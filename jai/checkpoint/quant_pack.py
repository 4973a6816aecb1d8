"""MLX's affine quantization in NumPy, so `jai quantize` runs wherever JAI is installed, with either twin
or none. tests/test_quant_pack.py checks it against `mx.quantize` code for code.

Per group of `group_size` weights along a row, in float32 as MLX computes it:
    scale = max((max - min) / (2**bits - 1), 1e-7), signed so that the edge of larger magnitude
    (min or max) becomes an exact code; bias = that edge; q = clip(rint((w - bias) / scale), 0, 2**bits - 1).
Choosing the larger edge as the bias keeps the weight that matters most (the largest) exact.
Codes are packed little end first: code k of a word sits at bits [k * bits, (k + 1) * bits).
"""

from __future__ import annotations

import numpy as np

from jai.checkpoint.quant import QuantSpec

_EPS = np.float32(1e-7)


def quantize(w: np.ndarray, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[rows, width] float -> uint32 words [rows, width * bits / 32], float32 scales, biases [rows, groups]"""
    w = np.asarray(w, dtype=np.float32)
    rows, width = w.shape
    groups = w.reshape(rows, width // spec.group_size, spec.group_size)
    n_bins = np.float32(2**spec.bits - 1)
    w_max, w_min = groups.max(axis=-1), groups.min(axis=-1)
    larger_is_min = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, _EPS)
    scale = np.where(larger_is_min, scale, -scale)
    edge = np.where(larger_is_min, w_min, w_max)
    q0 = np.rint(edge / scale)
    exact = q0 != 0
    # Where the edge rounds to code 0 (a flat group), MLX keeps the plain scale and a zero bias.
    scale = np.where(exact, edge / np.where(exact, q0, 1), scale).astype(np.float32)
    bias = np.where(exact, edge, 0).astype(np.float32)
    q = np.rint((groups - bias[..., None]) / scale[..., None])
    codes = np.clip(q, 0, n_bins).astype(np.uint32).reshape(rows, width)
    return pack(codes, spec), scale, bias


def pack(codes: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """uint codes [rows, width] -> uint32 words [rows, width / per_word]."""
    rows, width = codes.shape
    c = codes.astype(np.uint32).reshape(rows, width // spec.per_word, spec.per_word)
    shifts = (np.arange(spec.per_word, dtype=np.uint32) * spec.bits)[None, None, :]
    return np.bitwise_or.reduce(c << shifts, axis=-1).astype(np.uint32)


def unpack(words: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """The inverse of `pack`: uint8 codes [rows, words * per_word]."""
    rows = words.shape[0]
    shifts = (np.arange(spec.per_word, dtype=np.uint32) * spec.bits)[None, None, :]
    codes = (words.astype(np.uint32)[..., None] >> shifts) & np.uint32(2**spec.bits - 1)
    return codes.reshape(rows, -1).astype(np.uint8)


def dequantize(words: np.ndarray, scales: np.ndarray, biases: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """float32 [rows, width]: scale * q + bias, group by group."""
    codes = unpack(words, spec).astype(np.float32)
    rows, width = codes.shape
    g = codes.reshape(rows, width // spec.group_size, spec.group_size)
    s = scales.astype(np.float32)[..., None]
    b = biases.astype(np.float32)[..., None]
    return (s * g + b).reshape(rows, width)
