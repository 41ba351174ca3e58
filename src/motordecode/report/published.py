"""Published results of the NeuroBench primate-reaching task, with their sources.

R2 is the mean of the x and y R2 over the test split; footprint in bytes; operations per 4 ms step
(effective operations: nonzero weight x nonzero input products; the AEGRU paper's "MACs + ACs").
Per-session values are listed in the order of ``SESSIONS``; :func:`per_monkey` gives each
system's facts per monkey (96-channel Indy, 192-channel Loco) where the sources give them.
"""

from __future__ import annotations

import numpy as np

PUBLISHED_OPS_STEP_MS = 4  # every published operation count is per 4 ms sample (the benchmark's bins)

SESSIONS = ("indy_20160622_01", "indy_20160630_01", "indy_20170131_02",
            "loco_20170210_03", "loco_20170215_02", "loco_20170301_05")

AEGRU_PAPER = "AEGRU paper (BioCAS 2024 Grand Challenge), Table III"
RSNN_README = "tinyRSNN/bigRSNN repository README"

# name -> (R2 per session, std per session or None, source)
R2_PER_SESSION = {
    "ANN2D": ((0.633, 0.524, 0.622, 0.573, 0.475, 0.627), None, "NeuroBench example benchmark_2d_ann.py"),
    "ANN3D": ((0.674, 0.593, 0.659, 0.597, 0.528, 0.641), None, "NeuroBench example benchmark_3d_ann.py"),
    "SNN2": ((0.677, 0.501, 0.599, 0.571, 0.515, 0.620), None, RSNN_README + ", baseline SNN2"),
    "SNN3D": ((0.697, 0.577, 0.652, 0.623, 0.568, 0.681), None, RSNN_README + ", baseline SNN3"),
    "tinyRSNN": ((0.752, 0.545, 0.746, 0.622, 0.608, 0.690), (0.003, 0.004, 0.007, 0.003, 0.006, 0.006),
                 RSNN_README + " (mean of 5 seeds)"),
    "bigRSNN": ((0.770, 0.585, 0.772, 0.698, 0.629, 0.734), (0.003, 0.012, 0.006, 0.006, 0.008, 0.005),
                RSNN_README + " (mean of 5 seeds)"),
    "AEGRU": ((0.76, 0.65, 0.76, 0.68, 0.62, 0.70), (0.014, 0.008, 0.006, 0.013, 0.014, 0.015),
              AEGRU_PAPER + " (5 seeds, unpruned)"),
    "GRU": ((0.74, 0.64, 0.75, 0.61, 0.60, 0.66), (0.006, 0.011, 0.004, 0.017, 0.009, 0.013),
            AEGRU_PAPER + ", vanilla GRU (5 seeds)"),
    "GRU-t2": ((0.721, 0.577, 0.670, 0.585, 0.502, 0.670), None, "KIT challenge entry, arXiv 2409.04428"),
}

# name -> summary facts (mean over sessions unless the key says otherwise) and source
SUMMARY = {
    "ANN2D": {"r2": 0.58, "footprint_bytes": 27200, "ops": 5000, "source": "AEGRU paper, Table II"},
    "ANN3D": {"r2": 0.62, "footprint_bytes": 137800, "ops": 11500, "source": "AEGRU paper, Table II"},
    "SNN3D": {"r2": 0.63, "footprint_bytes": 34000, "ops": 38100, "source": "AEGRU paper, Table II"},
    "SNN streaming": {"r2": 0.58, "footprint_bytes": 29200, "ops": 400, "source": "AEGRU paper, Table II"},
    "AEGRU": {"r2": 0.70, "footprint_bytes": 45500, "ops": 42800, "source": "AEGRU paper, Table II"},
    "GRU": {"r2": 0.67, "source": AEGRU_PAPER + ", vanilla GRU, average of 5 seeds"},
    "AEGRU pruned 50%": {"r2": 0.71, "footprint_bytes": 45500, "ops": 25100, "connection_sparsity": 0.504,
                         "source": "AEGRU paper, Table II; footprint 39184 B Indy / 51856 B Loco self-reported"},
    "tinyRSNN": {"r2": 0.660, "footprint_bytes": 27144, "connection_sparsity": 0.45, "activation_sparsity": 0.9836,
                 "dense_ops": 13440, "effective_macs": 0,  # effective_acs: the mean of the six sessions, below
                 "source": RSNN_README + " (fp16; effective ACs: the mean of its six per-session rows)"},
    "bigRSNN": {"r2": 0.698, "footprint_bytes": 4833360, "connection_sparsity": 0.0, "activation_sparsity": 0.9683,
                "dense_ops": 1206272, "effective_macs": 0, "effective_acs": 45266, "source": RSNN_README},
    "GRU-t1": {"r2": 0.707, "dense_ops": 22342, "effective_macs": 8518, "effective_acs": 793,
               "source": "NeuroBench leaderboard (KIT, arXiv 2409.04428)"},
}

# summary row -> the per-session R2 row of the same system
SAME_SYSTEM = {"ANN2D": "ANN2D", "ANN3D": "ANN3D", "SNN streaming": "SNN2", "SNN3D": "SNN3D", "AEGRU": "AEGRU",
               "tinyRSNN": "tinyRSNN", "bigRSNN": "bigRSNN", "GRU": "GRU"}

# summary row -> per-session facts (order of SESSIONS) and source
PER_SESSION_FACTS = {
    "tinyRSNN": ({"footprint_bytes": (21000,) * 3 + (33288,) * 3,
                  "connection_sparsity": (0.47, 0.45, 0.50, 0.44, 0.42, 0.45),
                  "activation_sparsity": (0.9838, 0.9853, 0.9842, 0.9831, 0.9832, 0.9820),
                  "dense_ops": (10368,) * 3 + (16512,) * 3, "effective_macs": (0,) * 6,
                  "effective_acs": (299, 197, 143, 354, 405, 427)}, RSNN_README + " (per session, fp16)"),
    "bigRSNN": ({"footprint_bytes": (4636752,) * 3 + (5029968,) * 3, "connection_sparsity": (0.0,) * 6,
                 "activation_sparsity": (0.9622, 0.9718, 0.9721, 0.9677, 0.9674, 0.9686),
                 "dense_ops": (1157120,) * 3 + (1255424,) * 3, "effective_macs": (0,) * 6,
                 "effective_acs": (48097, 34837, 33289, 44664, 45945, 45189)}, RSNN_README + " (per session)"),
}

# the README's own mean row of tinyRSNN's effective ACs (213 +- 66) is the mean of its three Indy rows
# only; the six-session row is the mean of all six
SUMMARY["tinyRSNN"]["effective_acs"] = float(np.mean(PER_SESSION_FACTS["tinyRSNN"][0]["effective_acs"]))

# summary row -> {monkey: facts} and source, where a source gives them per monkey
PER_MONKEY_FACTS = {
    "SNN streaming": ({"indy": {"footprint_bytes": 19648, "activation_sparsity": 0.997, "dense_ops": 4900,
                                "effective_acs": 276},
                       "loco": {"footprint_bytes": 38848, "dense_ops": 9700, "effective_acs": 551}},
                      "NeuroBench leaderboard (SNN2 baseline)"),
    "ANN2D": ({"indy": {"footprint_bytes": 20824, "activation_sparsity": 0.683, "dense_ops": 4704,
                        "effective_macs": 3836},
               "loco": {"footprint_bytes": 33496, "dense_ops": 7776, "effective_macs": 6103}},
              "NeuroBench leaderboard (ANN2D baseline)"),
    "AEGRU pruned 50%": ({"indy": {"footprint_bytes": 39184}, "loco": {"footprint_bytes": 51856}},
                         "AEGRU team's self-reported sheet (fp32)"),
}

MONKEYS = ("indy", "loco")


def per_monkey(name: str) -> dict[str, dict]:
    """{monkey: facts} of the summary row ``name``: R2 the mean of its per-session R2 over the
    monkey's three sessions, the per-session facts averaged the same way, and the facts published
    per monkey; each monkey's ``source`` names where they come from. Empty when no source gives any."""
    result: dict[str, dict] = {}
    per_session = R2_PER_SESSION.get(SAME_SYSTEM.get(name, ""))
    facts, facts_source = PER_SESSION_FACTS.get(name, ({}, None))
    monkey_facts, monkey_source = PER_MONKEY_FACTS.get(name, ({}, None))
    for monkey in MONKEYS:
        index = [i for i, session in enumerate(SESSIONS) if session.startswith(monkey)]
        row, sources = {}, []
        if per_session is not None:
            row["r2"] = float(np.mean([per_session[0][i] for i in index]))
            sources.append(per_session[2])
        for key, values in facts.items():
            row[key] = float(np.mean([values[i] for i in index]))
        if facts:
            sources.append(facts_source)
        if monkey in monkey_facts:
            row.update(monkey_facts[monkey])
            sources.append(monkey_source)
        if row:
            result[monkey] = {**row, "source": "; ".join(dict.fromkeys(sources))}
    return result
