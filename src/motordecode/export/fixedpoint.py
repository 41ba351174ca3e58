"""The fixed-point number formats of the integer decoders, and their arithmetic.

A value v in format Q.f is the integer round(v * 2^f). Formats (bits in brackets):

    weights          int8   Q.f_w   per matrix, f_w = 7 for Q1.7 weights (the largest f_w <= 7
                                    whose range holds the matrix); pruned zeros stay zero
    biases           int32  at the scale of the products they join (f_w + f_in)
    input features   int16  Q.f_x   a table of the transform of each integer sub-window count
    layer inputs u   int16  Q.f_u   f_u calibrated on the training split (largest |u| * 2 fits)
    state h, gates   int16  Q.14    (h, r, z, n all lie in [-1, 1])
    pre-activations  int32  Q.10
    products         int32  accumulation of W x: |sum| <= N * 2^15 * 2^7 < 2^31 for N < 512 inputs;
                            the bias is then added in 64 bits and the result saturated to int32

Rounding: every right shift rounds half up, ``floor((x + 2^(s-1)) / 2^s)``; values that leave
their format saturate at its limits (no wrap-around anywhere).

Activations: one table T of tanh on [-8, 8] in steps of 2^-7 (2049 int16 Q.14 entries), linearly
interpolated on the 3 low bits of a Q.10 pre-activation, saturating outside:

    tanh(p)    = T(p)                         p in Q.10
    sigmoid(p) = (T(p read as Q.11) + 2^14) / 2    since sigma(x) = (1 + tanh(x / 2)) / 2

Error bound (measured over every Q.10 input in the table's range by :func:`activation_error`):
interpolation (h^2 / 8 max|f''| = 5.9e-6 for tanh) plus the Q.14 rounding of the entries and of
the interpolation (2 x 2^-15), plus saturation outside [-8, 8] (tanh: 2.3e-7; sigmoid: outside
[-16, 16], 1.1e-7).
"""

from __future__ import annotations

import numpy as np

PRE_FRAC = 10          # pre-activations: int32 Q.10
STATE_FRAC = 14        # state and gates: int16 Q.14
WEIGHT_BITS = 8
TABLE_FRAC = 7         # tanh table step 2^-7
TABLE_RANGE = 8        # ... over [-8, 8]
TABLE_SIZE = 2 * TABLE_RANGE * 2 ** TABLE_FRAC + 1
INT16 = (-(2 ** 15), 2 ** 15 - 1)
INT32 = (-(2 ** 31), 2 ** 31 - 1)


def rshift_round(x, shift: int):
    """``floor((x + 2^(s-1)) / 2^s)`` on int64 arrays (a left shift for ``shift`` < 0)."""
    x = np.asarray(x, dtype=np.int64)
    if shift <= 0:
        return x << -shift
    return (x + (1 << (shift - 1))) >> shift


def saturate(x, limits: tuple[int, int]):
    return np.clip(x, limits[0], limits[1])


def to_q(values, frac: int, limits: tuple[int, int]) -> np.ndarray:
    """Float values to integers of format Q.frac: round half up, saturate."""
    scaled = np.floor(np.asarray(values, dtype=np.float64) * 2.0 ** frac + 0.5)
    return saturate(scaled, limits).astype(np.int64)


def frac_bits_for(max_abs: float, bits: int, most: int) -> int:
    """The most fractional bits (at most ``most``) that hold ``max_abs`` in a signed ``bits``-bit integer."""
    frac = most
    while frac > -8 and max_abs * 2.0 ** frac > 2 ** (bits - 1) - 1:
        frac -= 1
    return frac


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, int]:
    """(int8 weights, f_w): the most fractional bits (at most 7) whose rounded values all fit int8
    (-128 .. 127), so Q1.7 weights (already on the grid, -1 included) come back exact with f_w = 7."""
    w = np.asarray(w, dtype=np.float64)
    frac = 7
    while frac > -8:
        q = np.floor(w * 2.0 ** frac + 0.5)
        if q.size == 0 or (q.min() >= -128 and q.max() <= 127):
            break
        frac -= 1
    return to_q(w, frac, (-128, 127)).astype(np.int8), frac


def tanh_table() -> np.ndarray:
    """T[i] = tanh(-8 + i 2^-7) in Q.14, i = 0 .. 2048."""
    grid = np.arange(TABLE_SIZE) / 2.0 ** TABLE_FRAC - TABLE_RANGE
    return to_q(np.tanh(grid), STATE_FRAC, INT16).astype(np.int16)


TANH_TABLE = tanh_table()


def table_tanh(pre: np.ndarray, frac: int = PRE_FRAC) -> np.ndarray:
    """tanh of a Q.frac pre-activation (frac >= 7) as Q.14, by the interpolated table."""
    low = frac - TABLE_FRAC
    top = (2 * TABLE_RANGE << frac)
    pos = np.clip(np.asarray(pre, dtype=np.int64) + (TABLE_RANGE << frac), 0, top)
    index = pos >> low
    part = pos & ((1 << low) - 1)
    nxt = np.minimum(index + 1, TABLE_SIZE - 1)
    table = TANH_TABLE.astype(np.int64)
    return table[index] + rshift_round((table[nxt] - table[index]) * part, low)


def table_sigmoid(pre: np.ndarray) -> np.ndarray:
    """sigmoid of a Q.10 pre-activation as Q.14: (tanh(p / 2) + 1) / 2."""
    return rshift_round(table_tanh(pre, PRE_FRAC + 1) + (1 << STATE_FRAC), 1)


def activation_error() -> dict[str, float]:
    """Largest |table - exact| over every Q.10 input in [-20, 20], for tanh and sigmoid."""
    pre = np.arange(-20 << PRE_FRAC, (20 << PRE_FRAC) + 1)
    x = pre / 2.0 ** PRE_FRAC
    scale = 2.0 ** STATE_FRAC
    return {"tanh": float(np.abs(table_tanh(pre) / scale - np.tanh(x)).max()),
            "sigmoid": float(np.abs(table_sigmoid(pre) / scale - 1 / (1 + np.exp(-x))).max())}
