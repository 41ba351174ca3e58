"""``--format nir``: the spiking decoders (tinyRSNN, bigRSNN, SNN2) as NIR graphs, read back and
replayed in the project's own discretisation with exactly the Python model's spikes.

Time constants follow the forward-Euler reading of a decay per step dt (snnTorch's convention):

    tau = dt / (1 - decay),   decay = 1 - dt / tau

RSNN (tinyRSNN, bigRSNN), network step dt (= the sample width / substeps):

    input -> Delay(dt) -> Linear(W) -> CubaLIF -> Delay(dt) -> Linear(V) -> CubaLIF   (recurrence)
                                       CubaLIF -> Delay(dt) -> Linear(W_out) -> CubaLI -> Linear(head mean) -> output
    CubaLIF: tau_syn = dt / (1 - alpha), w_in = tau_syn / dt, tau_mem = dt / (1 - beta), r = 1,
             v_leak = 0, v_threshold = 1, v_reset = 0;  CubaLI of the readout likewise.
    The project's step:  S_t = H(U_{t-1} - 1),  I_t = alpha I_{t-1} + D_t,
                         U_t = (beta U_{t-1} + (1 - beta) I_{t-1}) (1 - S_t)
    (the spike is the threshold test of the previous membrane, and it zeroes the whole next update).

SNN2 (NeuroBench baseline), step dt = the sample width:

    input -> Linear(fc1) -> LIF -> Linear(fc_out) -> LI -> output
    LIF: tau = dt / (1 - beta), r = tau / dt, v_leak = 0, v_threshold = 1;  LI likewise.
    The project's step (snnTorch Leaky, reset to zero from the previous membrane):
                         U_t = beta (1 - H(U_{t-1} - 1)) U_{t-1} + I_t,  S_t = H(U_t - 1);  output: U_t of the LI.

The graph's metadata records the recipe, dt, the substeps, the dtype and the step rule above.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motordecode.errors import ConfigError
from motordecode.export.spikes import spikes_and_outputs

NIR_RECIPES = ("tinyrsnn", "bigrsnn", "snn2")
RSNN_RULE = "S_t = H(U_{t-1} - 1); I_t = alpha I_{t-1} + D_t; U_t = (beta U_{t-1} + (1 - beta) I_{t-1}) (1 - S_t)"
SNN2_RULE = "U_t = beta (1 - H(U_{t-1} - 1)) U_{t-1} + I_t; S_t = H(U_t - 1); output U_t of the LI layer"


def _nir():
    try:
        import nir
    except ImportError:
        raise ConfigError("the NIR export needs the nir package: pip install 'motordecode[export]'.") from None
    return nir


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def tau_of(decay: torch.Tensor, dt_s: float) -> np.ndarray:
    return dt_s / (1.0 - _f64(decay))


def decay_of(tau: np.ndarray, dt_s: float, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(1.0 - dt_s / np.asarray(tau, dtype=np.float64))).to(dtype)


def rsnn_graph(model, recipe_name: str, dt_s: float):
    nir = _nir()
    lif, readout = model.lif, model.readout
    dtype = lif.input.weight.dtype
    alpha, beta = lif.decays()
    a, b = readout.decays()
    hidden, channels = lif.input.weight.shape
    units, heads, outputs = readout.fc.weight.shape[0], len(readout.heads), readout.n_outputs
    tau_syn, tau_mem, tau_rsyn, tau_rmem = (tau_of(d, dt_s) for d in (alpha, beta, a, b))
    for decay, tau in ((alpha, tau_syn), (beta, tau_mem), (a, tau_rsyn), (b, tau_rmem)):
        if not torch.equal(decay_of(tau, dt_s, dtype), decay):
            raise ConfigError("a decay does not survive the round trip through its time constant; not exported.")
    weight = lambda t: t.detach().numpy().copy()  # noqa: E731  (the model's dtype, e.g. float16)
    mean = np.tile(np.eye(outputs), heads) / heads
    nodes = {
        "input": nir.Input(input_type={"input": np.array([channels])}),
        "input_delay": nir.Delay(delay=np.full(channels, dt_s)),
        "input_weights": nir.Linear(weight=weight(lif.input.weight)),
        "lif": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=np.ones(hidden), v_leak=np.zeros(hidden),
                           v_threshold=np.full(hidden, lif.threshold), v_reset=np.zeros(hidden),
                           w_in=tau_syn / dt_s),
        "recurrent_delay": nir.Delay(delay=np.full(hidden, dt_s)),
        "recurrent_weights": nir.Linear(weight=weight(lif.recurrent.weight)),
        "readout_delay": nir.Delay(delay=np.full(hidden, dt_s)),
        "readout_weights": nir.Linear(weight=weight(readout.fc.weight)),
        "readout": nir.CubaLI(tau_syn=tau_rsyn, tau_mem=tau_rmem, r=np.ones(units), v_leak=np.zeros(units),
                              w_in=tau_rsyn / dt_s),
        "head_mean": nir.Linear(weight=mean),
        "output": nir.Output(output_type={"output": np.array([outputs])}),
    }
    edges = [("input", "input_delay"), ("input_delay", "input_weights"), ("input_weights", "lif"),
             ("lif", "recurrent_delay"), ("recurrent_delay", "recurrent_weights"), ("recurrent_weights", "lif"),
             ("lif", "readout_delay"), ("readout_delay", "readout_weights"), ("readout_weights", "readout"),
             ("readout", "head_mean"), ("head_mean", "output")]
    meta = {"producer": "motordecode", "recipe": recipe_name, "dt_s": dt_s, "substeps": model.config.substeps,
            "dtype": str(dtype).replace("torch.", ""), "heads": [list(h) for h in readout.heads], "rule": RSNN_RULE}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def snn2_graph(model, dt_s: float):
    nir = _nir()
    beta1, beta2 = (float(m.beta) for m in (model.lif1, model.lif_out))
    hidden, channels = model.fc1.weight.shape
    outputs = model.fc_out.weight.shape[0]
    for m in (model.lif1, model.lif_out):
        if not torch.equal(decay_of(tau_of(m.beta, dt_s), dt_s, m.beta.dtype), m.beta):
            raise ConfigError("a decay does not survive the round trip through its time constant; not exported.")
    tau1, tau2 = np.full(hidden, dt_s / (1 - beta1)), np.full(outputs, dt_s / (1 - beta2))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([channels])}),
        "fc1": nir.Linear(weight=model.fc1.weight.detach().numpy().copy()),
        "lif1": nir.LIF(tau=tau1, r=tau1 / dt_s, v_leak=np.zeros(hidden),
                        v_threshold=np.full(hidden, float(model.lif1.threshold)), v_reset=np.zeros(hidden)),
        "fc_out": nir.Linear(weight=model.fc_out.weight.detach().numpy().copy()),
        "lif_out": nir.LI(tau=tau2, r=tau2 / dt_s, v_leak=np.zeros(outputs)),
        "output": nir.Output(output_type={"output": np.array([outputs])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output")]
    meta = {"producer": "motordecode", "recipe": "snn2", "dt_s": dt_s, "substeps": 1,
            "dtype": str(model.fc1.weight.dtype).replace("torch.", ""), "rule": SNN2_RULE}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def graph_of(run):
    from motordecode.runs import step_ms

    if run.recipe.name not in NIR_RECIPES:
        raise ConfigError(f"{run.recipe.name} is not a spiking decoder; the NIR export covers "
                          f"{', '.join(NIR_RECIPES)}.")
    if run.recipe.name == "snn2":
        return snn2_graph(run.model, step_ms(run.config) / 1000.0)
    return rsnn_graph(run.model, run.recipe.name, run.model.config.dt_ms / 1000.0)


def _edges(graph) -> set:
    return {tuple(e) for e in graph.edges}


def _check_fixed_parameters(nodes, recipe: str, dt_s: float) -> None:
    """The parameters the project's neurons do not learn must hold the mapping's values."""
    expected = {"snn2": {"lif1": {"v_leak": 0.0, "v_threshold": 1.0, "v_reset": 0.0, "r": "tau/dt"},
                         "lif_out": {"v_leak": 0.0, "r": "tau/dt"}},
                }.get(recipe, {"lif": {"v_leak": 0.0, "v_threshold": 1.0, "r": 1.0, "v_reset": 0.0, "w_in": "tau_syn/dt"},
                               "readout": {"v_leak": 0.0, "r": 1.0, "w_in": "tau_syn/dt"}})
    for name, fields in expected.items():
        node = nodes[name]
        for field, value in fields.items():
            if value == "tau/dt":
                value = np.asarray(node.tau) / dt_s
            elif value == "tau_syn/dt":
                value = np.asarray(node.tau_syn) / dt_s
            if not np.allclose(np.asarray(getattr(node, field), dtype=np.float64), value, rtol=1e-12, atol=0):
                raise ConfigError(f"NIR node {name!r}: {field} is not the value of the mapping motordecode writes "
                                  "(docs/deployment.md); this graph cannot be replayed in the project's discretisation.")


def replay_model(graph):
    """The network of a graph written by :func:`graph_of` (read back with ``nir.read``), built from
    the graph's arrays alone in the project's discretisation."""
    meta = graph.metadata
    if meta.get("producer") != "motordecode":
        raise ConfigError("this NIR graph was not written by motordecode; its discretisation is unknown.")
    dt_s, dtype = float(meta["dt_s"]), getattr(torch, meta["dtype"])
    n = graph.nodes
    _check_fixed_parameters(n, meta["recipe"], dt_s)
    if meta["recipe"] == "snn2":
        from motordecode.decoders.neurobench.models import BaselineConfig, SNN2

        hidden, channels = n["fc1"].weight.shape
        model = SNN2(BaselineConfig("snn2", channels, n["fc_out"].weight.shape[0], step_ms=dt_s * 1000.0), hidden=hidden)
        with torch.no_grad():
            model.fc1.weight.copy_(torch.from_numpy(n["fc1"].weight))
            model.fc_out.weight.copy_(torch.from_numpy(n["fc_out"].weight))
            for name in ("lif1", "lif_out"):
                beta = decay_of(n[name].tau[:1], dt_s, getattr(model, name).beta.dtype)[0]
                getattr(model, name).beta.copy_(beta)
        return model.to(dtype).eval()
    from motordecode.decoders.rsnn.model import RSNN, RSNNConfig

    hidden, channels = n["input_weights"].weight.shape
    outputs = n["head_mean"].weight.shape[0]
    config = RSNNConfig(n_channels=channels, hidden=hidden, n_outputs=outputs, dt_ms=dt_s * 1000.0,
                        readout_heads=tuple(tuple(h) for h in meta["heads"]), substeps=int(meta["substeps"]))
    model = RSNN(config).to(dtype).eval()
    with torch.no_grad():
        model.lif.input.weight.copy_(torch.from_numpy(n["input_weights"].weight))
        model.lif.recurrent.weight.copy_(torch.from_numpy(n["recurrent_weights"].weight))
        model.readout.fc.weight.copy_(torch.from_numpy(n["readout_weights"].weight))
    lif_decays = (decay_of(n["lif"].tau_syn, dt_s, dtype), decay_of(n["lif"].tau_mem, dt_s, dtype))
    readout_decays = (decay_of(n["readout"].tau_syn, dt_s, dtype), decay_of(n["readout"].tau_mem, dt_s, dtype))
    # the decays come from the graph's time constants, not from the learnable parameters
    model.lif.decays = lambda: lif_decays
    model.readout.decays = lambda: readout_decays
    return model


def write_nir(run, recording, split, mode, out: Path) -> dict:
    from motordecode.export.exporter import test_streams

    nir = _nir()
    graph = graph_of(run)
    nir.write(str(out / "decoder.nir"), graph)
    back = nir.read(str(out / "decoder.nir"))
    if set(back.nodes) != set(graph.nodes) or _edges(back) != _edges(graph):
        raise ConfigError("the NIR graph read back differs from the one written; not exported.")
    replay = replay_model(back)
    same_spikes, same_outputs, spikes_total, steps = True, True, 0, 0
    for lo, start, stop in test_streams(recording, split, 0):
        samples = recording.spikes[lo:stop]
        s_model, y_model = spikes_and_outputs(run.model, samples, run.recipe.name)
        s_replay, y_replay = spikes_and_outputs(replay, samples, run.recipe.name)
        same_spikes &= bool(np.array_equal(s_model, s_replay))
        same_outputs &= bool(np.array_equal(y_model, y_replay))
        spikes_total += int(s_model.sum())
        steps += len(s_model)
    if not (same_spikes and same_outputs):
        raise ConfigError("the NIR graph read back does not replay the model's spikes exactly; not exported.")
    nodes = sorted({type(node).__name__ for node in back.nodes.values()})
    return {"mode": "stream", "files": ["decoder.nir"], "nir_version": getattr(nir, "__version__", "unknown"),
            "node_types": nodes, "metadata": dict(graph.metadata),
            "sizes": {"file_bytes": (out / "decoder.nir").stat().st_size},
            "agreement": {"against": "the run's model on the test split, from the zero state",
                          "identical_spikes": same_spikes, "identical_outputs": same_outputs,
                          "network_steps": steps, "spikes": spikes_total}}
