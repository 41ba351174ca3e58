"""The one face every decoder has: for each family, the harness's predictions are what the model
computed before the face existed, a Stream fed sample by sample gives the harness's predictions,
``step`` gives what ``sequence`` gives, and batch rows are independent streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motordecode.data.features import WindowFeatures
from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.decoders.base import Stream
from motordecode.decoders.registry import family_of
from motordecode.pipeline import evaluate_model
from motordecode.recipes import get_recipe, override

from conftest import SHARED

NB_WEIGHTS = SHARED / "reference" / "weights" / "neurobench"
NB_FILES = {"ann2d": "2D_ANN_Weight/indy_20170131_02_model_state_dict.pth",
            "ann3d": "3D_ANN_Weight/indy_20170131_02_model_state_dict.pth",
            "snn3d": "SNN3_Weight/indy_20170131_02_model_state_dict.pth", "snn2": "SNN2_indy_20170131_02.pt"}
PUSHED = 400  # samples of the test split fed one by one


@pytest.fixture(scope="module")
def session(indy_file):
    rec = load_recording(indy_file)
    return rec, default_split(rec)


def _trained(name, rec, split):
    """A model of each family with meaningful weights: published files where they exist, a quick
    fit for the classical filters, a seeded initialisation for the GRU."""
    recipe = get_recipe(name)
    family = family_of(recipe)
    if name in NB_FILES:
        path = NB_WEIGHTS / NB_FILES[name]
        assert path.is_file(), f"published weights missing: {path} (the tests need ../shared)"
        return recipe, family.import_checkpoint(name, path)
    if name == "tinyrsnn":
        path = SHARED / "reference" / "weights" / "tinyRSNN" / "indy01" / "tinyRSNN-1.pth"
        assert path.is_file(), f"published weights missing: {path} (the tests need ../shared)"
        return recipe, family.import_checkpoint(name, path).half()
    if name in ("wiener", "kalman"):
        return recipe, family.trainer(recipe, rec, split).fit().model
    torch.manual_seed(0)
    recipe = override(recipe, {"standardize_labels": False})
    return recipe, family.build(recipe, rec.n_channels, 2, rec.step_ms).eval()


def _before_the_face(name, model, recipe, rec, test):
    """What the harness ran before decoders had a face: the model called on the whole test split."""
    x = torch.as_tensor(rec.spikes[test], dtype=torch.float32)
    with torch.no_grad():
        if name in ("aegru", "gru"):
            features = WindowFeatures(recipe.n_sub, recipe.sub_width(rec.step_ms), transform=recipe.transform)
            return model(torch.from_numpy(features(rec.spikes, test)))[:, -1].numpy()
        model.reset() if hasattr(model, "reset") else None
        return model(x).float().numpy()


def _stateful_reference(model, recipe, rec, test):
    """Phase p = j mod s runs its own GRU over the newest sub-windows of samples p, p + s, ..."""
    s = recipe.sub_width(rec.step_ms)
    u = torch.from_numpy(WindowFeatures(1, s, transform=recipe.transform)(rec.spikes, test)[:, 0])
    out = np.empty((len(test), 2), np.float32)
    with torch.no_grad():
        for p in range(s):
            out[p::s] = model(u[p::s][None])[0].numpy()
    return out


@pytest.mark.parametrize("name", ["aegru", "gru", "tinyrsnn", "ann2d", "ann3d", "snn2", "snn3d", "wiener", "kalman"])
def test_stream_gives_the_harness_predictions_and_step_equals_sequence(name, session):
    rec, split = session
    recipe, model = _trained(name, rec, split)
    family = family_of(recipe)
    results = evaluate_model(model, recipe, rec, split)
    assert set(results) == set(family.modes)
    test = split.test
    # 1. the harness (a Stream over the test split) computes what the model computed before
    legacy = _before_the_face(name, model, recipe, rec, test)
    np.testing.assert_allclose(results[family.modes[0]][1], legacy, rtol=1e-6, atol=1e-6)
    if "stateful" in results:
        np.testing.assert_allclose(results["stateful"][1], _stateful_reference(model, recipe, rec, test),
                                   rtol=1e-5, atol=1e-6)
    for mode in family.modes:
        decoder = family.decoder(model, recipe, rec.step_ms, mode)
        # 2. a Stream pushed sample by sample gives the harness's predictions
        stream = Stream(decoder)
        stream.reset(history=rec.spikes[:test[0]])
        pushed = np.stack([stream.push(sample) for sample in rec.spikes[test[:PUSHED]]])
        np.testing.assert_allclose(pushed, results[mode][1][:PUSHED], rtol=1e-4, atol=2e-5, err_msg=mode)
        # 3. step == sequence, and two batch rows are two independent streams
        x = torch.as_tensor(np.stack([rec.spikes[test[:PUSHED]], rec.spikes[test[PUSHED:2 * PUSHED]]], axis=1),
                            dtype=torch.float32)
        with torch.no_grad():
            together, _ = decoder.sequence(x, decoder.initial_state(2))
            state, steps = decoder.initial_state(2), []
            for x_t in x:
                y_t, state = decoder.step(x_t, state)
                steps.append(y_t)
            alone, _ = decoder.sequence(x[:, 1:], decoder.initial_state(1))
        np.testing.assert_allclose(torch.stack(steps).float(), together.float(), rtol=1e-4, atol=2e-5, err_msg=mode)
        np.testing.assert_allclose(together[:, 1].float(), alone[:, 0].float(), rtol=1e-4, atol=2e-5, err_msg=mode)
        assert isinstance(state, tuple) and hasattr(state, "_fields")  # a NamedTuple


def test_buffered_faces_leave_the_published_buffers_at_rest(session):
    """The NeuroBench buffers keep their published names (the footprint is counted at rest) while the
    face takes and returns the state explicitly."""
    rec, split = session
    recipe, model = _trained("ann2d", rec, split)
    decoder = family_of(recipe).decoder(model, recipe, rec.step_ms)
    state = decoder.initial_state()
    _, state = decoder.sequence(torch.as_tensor(rec.spikes[:80, None], dtype=torch.float32), state)
    assert state.buffer.shape == (1, 50, rec.n_channels) and state.rows_seen == 81
    assert model.history.data_buffer.shape == (1, rec.n_channels) and model.history.rows_seen == 1


def test_stream_refuses_samples_of_the_wrong_width(session):
    from motordecode.errors import ConfigError

    rec, split = session
    recipe, model = _trained("wiener", rec, split)
    stream = Stream(family_of(recipe).decoder(model, recipe, rec.step_ms))
    with pytest.raises(ConfigError, match=f"{rec.n_channels} channels"):
        stream.push(np.zeros(rec.n_channels + 1))
    with pytest.raises(ConfigError, match=f"{rec.n_channels} channels"):
        stream(np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="inference mode"):
        family_of(recipe).decoder(model, recipe, rec.step_ms, "stateful")
