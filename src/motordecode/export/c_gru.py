"""C99 source of an integer GRU decoder (windowed, stateful or delta): ``decoder.h``, ``decoder.c``.

The code is the integer arithmetic of :mod:`motordecode.export.integer_gru` and
:mod:`motordecode.export.integer_delta`, written out: const weight arrays, one state struct, no
allocation, no library call. Right shifts of negative numbers are written as floor divisions, so
the result does not depend on the compiler's choice for ``>>`` on signed values. The int32 outputs
match the NumPy reference bit for bit; ``md_velocity`` turns them into the recording's units.
"""

from __future__ import annotations

import numpy as np

from motordecode.export.fixedpoint import PRE_FRAC, STATE_FRAC, TABLE_FRAC, TABLE_RANGE, TABLE_SIZE, TANH_TABLE
from motordecode.export.integer_delta import IntegerDelta
from motordecode.export.integer_gru import COUNT_MAX, SAMPLE_MAX, IntegerGRU


def c_array(name: str, ctype: str, values, per_line: int = 16) -> str:
    values = np.asarray(values).ravel()
    body = ",\n".join("    " + ", ".join(str(int(v)) for v in values[i:i + per_line])
                      for i in range(0, len(values), per_line))
    return f"static const {ctype} {name}[{len(values)}] = {{\n{body}\n}};\n"


def c_double(value: float) -> str:
    return repr(float(value))


HELPERS = """\
static int64_t rsr(int64_t x, int s)            /* floor((x + 2^(s-1)) / 2^s); s <= 0: x 2^-s */
{
    int64_t y;
    if (s <= 0) return x * ((int64_t)1 << -s);
    y = x + ((int64_t)1 << (s - 1));
    return y >= 0 ? y >> s : -((-y + ((int64_t)1 << s) - 1) >> s);
}

static int64_t sat(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }
#define SAT32(x) sat((x), -2147483647 - 1, 2147483647)
#define SAT16(x) sat((x), -32768, 32767)

static int64_t tanh_q(int64_t pre, int frac)      /* tanh of Q.frac as Q.14, interpolated table */
{
    int low = frac - TABLE_FRAC;
    int64_t pos = sat(pre + ((int64_t)TABLE_RANGE << frac), 0, (int64_t)(2 * TABLE_RANGE) << frac);
    int64_t i = pos >> low, part = pos & (((int64_t)1 << low) - 1);
    int64_t next = i + 1 < TABLE_SIZE ? i + 1 : TABLE_SIZE - 1;
    return TANH_T[i] + rsr((TANH_T[next] - TANH_T[i]) * part, low);
}

static int64_t sigmoid_q(int64_t pre) { return rsr(tanh_q(pre, PRE_FRAC + 1) + (1 << STATE_FRAC), 1); }

/* acc[o] = sat32(bias[o] + sum_i w[o][i] x[i]): the products accumulate in int32 (bounded, see
   docs/deployment.md), the bias is added in 64 bits */
static void matvec(const int8_t *w, const int32_t *bias, const int32_t *x, int n_in, int n_out, int32_t *acc)
{
    int o, i;
    for (o = 0; o < n_out; o++) {
        int32_t sum = 0;
        const int8_t *row = w + (long)o * n_in;
        for (i = 0; i < n_in; i++) sum += (int32_t)row[i] * x[i];
        acc[o] = (int32_t)SAT32((int64_t)sum + bias[o]);
    }
}

/* the GRU gates: h from gi = W_ih u + b_ih, gh = W_hh h + b_hh (int32), rows r, z, n */
static void gru_gates(const int32_t *gi, const int32_t *gh, int32_t *h)
{
    int j;
    for (j = 0; j < MD_HIDDEN; j++) {
        int64_t r = sigmoid_q(SAT32(SAT32(rsr(gi[j], FRAC_GI - PRE_FRAC)) + SAT32(rsr(gh[j], FRAC_GH - PRE_FRAC))));
        int64_t z = sigmoid_q(SAT32(SAT32(rsr(gi[MD_HIDDEN + j], FRAC_GI - PRE_FRAC))
                                    + SAT32(rsr(gh[MD_HIDDEN + j], FRAC_GH - PRE_FRAC))));
        int64_t ghn = SAT32(rsr(gh[2 * MD_HIDDEN + j], FRAC_GH - PRE_FRAC));
        int64_t n = tanh_q(SAT32(SAT32(rsr(gi[2 * MD_HIDDEN + j], FRAC_GI - PRE_FRAC)) + rsr(r * ghn, STATE_FRAC)), PRE_FRAC);
        h[j] = (int32_t)(n + rsr(z * (h[j] - n), STATE_FRAC));
    }
}

/* the sub-window sums: a ring of the last MD_SPAN samples, running sums per sub-window */
static void read_sample(md_state *s, const int32_t *counts)
{
    int m, c;
    for (m = 0; m < MD_SUB; m++) {
        int enter = (m == MD_SUB - 1) ? -1 : (s->pos + (m + 1) * MD_WIDTH) % MD_SPAN;
        int leave = (s->pos + m * MD_WIDTH) % MD_SPAN;
        for (c = 0; c < MD_CHANNELS; c++) {
            int32_t in = enter < 0 ? (int32_t)sat(counts[c], 0, SAMPLE_MAX) : s->ring[enter][c];
            s->sums[m][c] += in - s->ring[leave][c];
        }
    }
    for (c = 0; c < MD_CHANNELS; c++) s->ring[s->pos][c] = (uint16_t)sat(counts[c], 0, SAMPLE_MAX);
    s->pos = (s->pos + 1) % MD_SPAN;
}

static void features(const int32_t *sums, int32_t *x)
{
    int c;
    for (c = 0; c < MD_CHANNELS; c++) x[c] = FEATURE_T[sums[c] > COUNT_MAX ? COUNT_MAX : sums[c]];
}
"""

GRU_STEP = """\
static void gru_step(const int32_t *u, int32_t *h)
{
    int32_t gi[3 * MD_HIDDEN], gh[3 * MD_HIDDEN];
    matvec(W_IH, B_IH, u, MD_INPUT, 3 * MD_HIDDEN, gi);
    matvec(W_HH, B_HH, h, MD_HIDDEN, 3 * MD_HIDDEN, gh);
    gru_gates(gi, gh, h);
}

"""

ENCODE = """\
static void encode(const int32_t *x, int32_t *u)   /* u = sat16((W_u x + b_u) >> shift) */
{
    int32_t acc[MD_HIDDEN];
    int j;
    matvec(W_U, B_U, x, MD_CHANNELS, MD_HIDDEN, acc);
    for (j = 0; j < MD_HIDDEN; j++) u[j] = (int32_t)SAT16(rsr(acc[j], FRAC_FCU - FRAC_U));
}
"""

ENCODE_IDENTITY = """\
static void encode(const int32_t *x, int32_t *u) { int c; for (c = 0; c < MD_CHANNELS; c++) u[c] = x[c]; }
"""

STEP = {
    "windowed": """\
void md_step(md_state *s, const int32_t *counts, md_out_t *y)
{
    int32_t x[MD_CHANNELS], u[MD_INPUT], h[MD_HIDDEN];
    int m, j;
    read_sample(s, counts);
    for (j = 0; j < MD_HIDDEN; j++) h[j] = 0;
    for (m = 0; m < MD_SUB; m++) {                  /* k GRU steps from h = 0 */
        features(s->sums[m], x);
        encode(x, u);
        gru_step(u, h);
    }
    matvec(W_Y, B_Y, h, MD_HIDDEN, MD_OUTPUTS, y);
}
""",
    "stateful": """\
void md_step(md_state *s, const int32_t *counts, md_out_t *y)
{
    int32_t x[MD_CHANNELS], u[MD_INPUT];
    int32_t *h = s->h[s->phase];                    /* phase = samples seen mod MD_PHASES */
    read_sample(s, counts);
    features(s->sums[0], x);
    encode(x, u);
    gru_step(u, h);
    matvec(W_Y, B_Y, h, MD_HIDDEN, MD_OUTPUTS, y);
    s->phase = (s->phase + 1) % MD_PHASES;
}
""",
    "stream": """\
/* M[o] += sum over the nonzero changes d[i] of w[o][i] d[i]: only their weight columns are read */
static void accumulate(const int8_t *w, const int32_t *d, int n_in, int n_out, int32_t *m)
{
    int i, o;
    for (i = 0; i < n_in; i++) {
        if (d[i] == 0) continue;
        for (o = 0; o < n_out; o++) m[o] += (int32_t)w[(long)o * n_in + i] * d[i];
    }
}

/* d = v - ref where |v - ref| > theta, else 0; ref += d */
static void deltas(const int32_t *v, int32_t *ref, int32_t theta, int n, int32_t *d)
{
    int i;
    for (i = 0; i < n; i++) {
        int32_t change = v[i] - ref[i];
        d[i] = (change > theta || change < -theta) ? change : 0;
        ref[i] += d[i];
    }
}

void md_step(md_state *s, const int32_t *counts, md_out_t *y)
{
    int32_t x[MD_CHANNELS], dx[MD_CHANNELS], u[MD_HIDDEN], du[MD_HIDDEN], dh[MD_HIDDEN];
    int32_t gi[3 * MD_HIDDEN], gh[3 * MD_HIDDEN];
    int j;
    read_sample(s, counts);
    features(s->sums[0], x);
    deltas(x, s->x_ref, THETA_X, MD_CHANNELS, dx);
    accumulate(W_U, dx, MD_CHANNELS, MD_HIDDEN, s->m_u);
    for (j = 0; j < MD_HIDDEN; j++) u[j] = (int32_t)SAT16(rsr(SAT32((int64_t)s->m_u[j] + B_U[j]), FRAC_FCU - FRAC_U));
    deltas(u, s->u_ref, THETA_U, MD_HIDDEN, du);
    deltas(s->h, s->h_ref, THETA_H, MD_HIDDEN, dh);
    accumulate(W_IH, du, MD_HIDDEN, 3 * MD_HIDDEN, s->m_i);
    accumulate(W_HH, dh, MD_HIDDEN, 3 * MD_HIDDEN, s->m_h);
    for (j = 0; j < 3 * MD_HIDDEN; j++) {
        gi[j] = (int32_t)SAT32((int64_t)s->m_i[j] + B_IH[j]);
        gh[j] = (int32_t)SAT32((int64_t)s->m_h[j] + B_HH[j]);
    }
    gru_gates(gi, gh, s->h);
    matvec(W_Y, B_Y, s->h, MD_HIDDEN, MD_OUTPUTS, y);
}
""",
}

MD_INIT = """
void md_init(md_state *s)                          /* the zero state */
{
    unsigned char *p = (unsigned char *)s;
    unsigned long i;
    for (i = 0; i < sizeof *s; i++) p[i] = 0;
}
"""

STATE = {
    "windowed": "",
    "stateful": "    int32_t h[MD_PHASES][MD_HIDDEN];   /* Q.14 state of each phase */\n    int phase;\n",
    "stream": ("    int32_t x_ref[MD_CHANNELS];        /* last propagated features, Q.f_x */\n"
               "    int32_t m_u[MD_HIDDEN];            /* W_u x^ */\n"
               "    int32_t u_ref[MD_HIDDEN], h_ref[MD_HIDDEN], h[MD_HIDDEN];\n"
               "    int32_t m_i[3 * MD_HIDDEN], m_h[3 * MD_HIDDEN];   /* W_ih u^, W_hh h^ */\n"),
}


def header(net: IntegerGRU, mode: str, channels: int, n_sub: int, width: int) -> str:
    outputs = net.fc_out.weight.shape[0]
    phases = f"#define MD_PHASES {width}\n" if mode == "stateful" else ""
    return f"""\
/* motordecode integer GRU decoder ({mode}); generated by `motordecode export`. Formats: docs/deployment.md */
#ifndef MD_DECODER_H
#define MD_DECODER_H
#include <stdint.h>

#define MD_CHANNELS {channels}
#define MD_OUTPUTS {outputs}
#define MD_HIDDEN {net.cell.hidden}
#define MD_SUB {n_sub}          /* sub-windows per input window */
#define MD_WIDTH {width}        /* samples per sub-window */
#define MD_SPAN (MD_SUB * MD_WIDTH)
#define MD_RAW_INT 1                  /* md_step's outputs are integers (print with -r) */
typedef int32_t md_out_t;
{phases}
typedef struct {{
    uint16_t ring[MD_SPAN][MD_CHANNELS];   /* the last MD_SPAN samples */
    int32_t sums[MD_SUB][MD_CHANNELS];     /* their sub-window sums */
    int pos;                               /* ring slot of the oldest sample */
{STATE[mode]}}} md_state;

void md_init(md_state *s);                                  /* the zero state */
void md_step(md_state *s, const int32_t *counts, md_out_t *y);  /* one sample in, raw outputs out */
void md_velocity(const md_out_t *y, double *v);             /* raw outputs -> recording's units */

#endif
"""


def source(net: IntegerGRU, mode: str) -> str:
    """decoder.c for ``net`` in ``mode`` ("windowed", "stateful" or "stream" for the delta GRU)."""
    cell = net.cell
    n_input = cell.ih.weight.shape[1]
    parts = ["/* motordecode integer GRU decoder; generated by `motordecode export`. */\n",
             '#include "decoder.h"\n\n',
             f"#define PRE_FRAC {PRE_FRAC}\n#define STATE_FRAC {STATE_FRAC}\n#define TABLE_FRAC {TABLE_FRAC}\n",
             f"#define TABLE_RANGE {TABLE_RANGE}\n#define TABLE_SIZE {TABLE_SIZE}\n#define COUNT_MAX {COUNT_MAX}\n",
             f"#define SAMPLE_MAX {SAMPLE_MAX}\n#define MD_INPUT {n_input}\n",
             f"#define FRAC_GI {cell.ih.frac_out}\n#define FRAC_GH {cell.hh.frac_out}\n#define FRAC_U {net.frac_u}\n"]
    if net.fc_in is not None:
        parts.append(f"#define FRAC_FCU {net.fc_in.frac_out}\n")
    if isinstance(net, IntegerDelta):
        parts.append(f"#define THETA_X {net.theta_x}\n#define THETA_U {net.theta_u}\n#define THETA_H {net.theta_h}\n")
    parts.append("\n")
    parts.append(c_array("TANH_T", "int16_t", TANH_TABLE))
    parts.append(c_array("FEATURE_T", "int16_t", net.table.values))
    if net.fc_in is not None:
        parts += [c_array("W_U", "int8_t", net.fc_in.weight), c_array("B_U", "int32_t", net.fc_in.bias)]
    parts += [c_array("W_IH", "int8_t", cell.ih.weight), c_array("B_IH", "int32_t", cell.ih.bias),
              c_array("W_HH", "int8_t", cell.hh.weight), c_array("B_HH", "int32_t", cell.hh.bias),
              c_array("W_Y", "int8_t", net.fc_out.weight), c_array("B_Y", "int32_t", net.fc_out.bias)]
    factor = ", ".join(c_double(v) for v in net.out_factor)
    shift = ", ".join(c_double(v) for v in net.y_shift)
    parts.append(f"static const double OUT_FACTOR[MD_OUTPUTS] = {{{factor}}};\n"
                 f"static const double OUT_SHIFT[MD_OUTPUTS] = {{{shift}}};\n\n")
    parts.append(HELPERS)
    if mode != "stream":
        parts += [GRU_STEP, ENCODE if net.fc_in is not None else ENCODE_IDENTITY]
    parts.append(STEP[mode])
    parts.append(MD_INIT)
    parts.append("""
void md_velocity(const md_out_t *y, double *v)
{
    int d;
    for (d = 0; d < MD_OUTPUTS; d++) v[d] = (double)y[d] * OUT_FACTOR[d] + OUT_SHIFT[d];
}
""")
    return "".join(parts)
