"""The registry of decoder families: the one place the pipeline, the CLI, the sweeps and
``import-checkpoint`` ask what a recipe is, how to build, train and stream it.

A family is one package under ``motordecode.decoders`` whose ``FAMILY`` object subclasses
:class:`Family`. The built-in families are listed in ``BUILTIN`` (one line each) and registered on
first use, followed by those that installed packages declare under the entry-point group
``motordecode.families`` (each naming a ``Family`` instance, so ``motordecode train`` finds them);
:func:`register` adds a family at run time (a notebook, a test's toy family).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from types import MappingProxyType

from motordecode.errors import ConfigError
from motordecode.notices import warn
from motordecode.recipes import RecipeFields

BUILTIN = (
    "motordecode.decoders.gru",
    "motordecode.decoders.delta",
    "motordecode.decoders.rsnn",
    "motordecode.decoders.neurobench",
    "motordecode.decoders.classical",
)

PLUGIN_GROUP = "motordecode.families"


class Family(ABC):
    """What every decoder family provides. Heavy modules are imported inside the methods, so
    looking up a recipe stays cheap.

    Attributes: ``name``; ``recipe_type`` (a frozen dataclass with a ``name`` and a ``model`` field);
    ``recipes`` (recipe name -> recipe with the published defaults); ``modes`` (inference modes,
    the first one the published); ``checkpoint_kinds`` (published checkpoint files it imports);
    ``pretrains`` (whether ``--pretrain FILE ...`` applies); ``published`` (recipe name -> labels of
    the published rows to print beside it).
    """

    name: str
    recipe_type: type
    recipes: dict
    modes: tuple = ("stream",)
    checkpoint_kinds: tuple = ()
    pretrains: bool = False
    published = MappingProxyType({})

    def owns(self, recipe) -> bool:
        return isinstance(recipe, self.recipe_type)

    def resolve_mode(self, mode: str | None) -> str:
        """``mode``, or the published one when None; ConfigError for a mode the family lacks."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ConfigError(f"the {self.name} decoders have the inference mode(s) {', '.join(self.modes)}; "
                              f"got {mode!r}.")
        return mode

    @abstractmethod
    def build(self, recipe, n_channels: int, n_outputs: int, step_ms: float):
        """The untrained network (an ``nn.Module``) for samples ``step_ms`` apart."""

    @abstractmethod
    def decoder(self, model, recipe, step_ms: float, mode: str | None = None):
        """The streaming face (:class:`~motordecode.decoders.base.Decoder`) of a trained ``model``."""

    @abstractmethod
    def trainer(self, recipe, recording, split, *, seed: int = 0, run_dir=None, progress: bool = False,
                threads: int | None = None, device="auto", **initial):
        """An object with ``fit(resume=False) -> TrainResult`` and, optionally, ``stage_sizes()``
        (training examples per epoch of each stage, for the throughput in the metrics row; see
        :mod:`motordecode.training.epochs`). ``device`` (:mod:`motordecode.devices`): where to train;
        the trained model comes back on the CPU (a trainer that fits on the CPU only takes and
        ignores it). Families that pre-train also get ``initial``: the state dict of the
        pre-trained network to start from."""

    def pretrainer(self, recipe, recordings: list, *, seed: int = 0, run_dir=None, progress: bool = False,
                   threads: int | None = None, device="auto"):
        """Families that pre-train: a trainer of the network on ``recordings`` (same channels), whose
        ``fit(resume=False)`` returns the pre-trained model (:mod:`motordecode.pretraining`). By
        default the family's own trainer on the pooled recordings, ``pretrain_epochs`` epochs,
        without pruning, quantisation or the folded label scale (``for_pretraining``)."""
        from motordecode.pretraining import pooled, pretraining_recipe

        if not self.pretrains:
            raise ConfigError(f"the {self.name} family has no pre-training stage.")
        recording, split = pooled(recordings)
        trainer = self.trainer(pretraining_recipe(recipe), recording, split, seed=seed, run_dir=run_dir,
                               progress=progress, threads=threads, device=device)
        trainer.for_pretraining = True
        return trainer

    def pretraining_files(self, recipe, data, pretrain, pretrained=None) -> list:
        """The recordings a run pre-trains on: ``pretrain`` (the files given), or, with
        ``pretrain_epochs`` > 0, the benchmark sessions of the monkey next to ``data`` (the RSNN
        repository's schedule); a warning when there are none and no ``pretrained`` network is
        given either. Families without a pre-training stage refuse files."""
        from pathlib import Path

        from motordecode.data.sessions import default_pretraining_files

        if not self.pretrains:
            if pretrain:
                takers = [name for f in families().values() if f.pretrains for name in f.recipes]
                raise ConfigError(f"recipe {recipe.name!r} has no pre-training stage; pre-training recordings are for "
                                  f"{', '.join(takers)}.")
            return []
        epochs = getattr(recipe, "pretrain_epochs", 0)
        if pretrain:
            if epochs == 0:
                raise ConfigError(f"recipe {recipe.name!r} pre-trains for pretrain_epochs epochs, which is 0; set "
                                  "pretrain_epochs=N to pre-train on the files given.")
            return [Path(f).resolve() for f in pretrain]
        if epochs == 0:
            return []
        files = default_pretraining_files(data)
        if not files and pretrained is None:
            warn(f"recipe {recipe.name!r} pre-trains for {epochs} epochs (pretrain_epochs), but {Path(data).name} "
                 "is not a benchmark session, so no pre-training sessions were found; it trains without "
                 "pre-training. Name the recordings to pre-train on, or set pretrain_epochs=0.")
        return files

    def describe(self, recipe, step_ms: float) -> dict:
        """Facts about the decoder's input on this sample spacing, added to the metrics row."""
        return {}

    def notices(self, recipe, step_ms: float) -> list[str]:
        """Warnings about running ``recipe`` on samples ``step_ms`` apart: each length the samples
        change (:func:`motordecode.recipes.changed_lengths`). The pipeline issues them."""
        return []

    def import_checkpoint(self, kind: str, path):
        """The model of a published checkpoint file of ``kind`` (one of ``checkpoint_kinds``, each
        also a recipe name of the family); the model has ``config.n_channels`` and
        ``config.n_outputs``, and runs on 4 ms samples."""
        raise ConfigError(f"the {self.name} family imports no checkpoints.")


_FAMILIES: dict[str, Family] = {}
_loaded = False


def register(family: Family) -> Family:
    """Add a family (an instance of a :class:`Family` subclass); its name and recipe names must be
    new. Returns it."""
    _load_builtin()
    _add(family)
    return family


def unregister(name: str) -> None:
    """Remove a family added with :func:`register` (tests use it to clean up)."""
    _FAMILIES.pop(name, None)


def _add(family: Family) -> None:
    if family.name in _FAMILIES:
        raise ConfigError(f"a decoder family named {family.name!r} is already registered.")
    for what, names in (("recipe names", lambda f: set(f.recipes)),
                        ("model names", lambda f: {r.model for r in f.recipes.values()})):
        taken = {n: f.name for f in _FAMILIES.values() for n in names(f)}
        clash = sorted(n for n in names(family) if n in taken)
        if clash:
            raise ConfigError(f"family {family.name!r}: {what} {', '.join(clash)} are taken by "
                              f"{', '.join(sorted({taken[n] for n in clash}))}.")
    _FAMILIES[family.name] = family


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    found = [importlib.import_module(module).FAMILY for module in BUILTIN]  # all, before any is added
    found += [entry.load() for entry in entry_points(group=PLUGIN_GROUP)]
    for family in found:
        if family.name not in _FAMILIES:
            _add(family)
    _loaded = True


def families() -> dict[str, Family]:
    _load_builtin()
    return dict(_FAMILIES)


def recipes() -> dict:
    """Every registered recipe name -> its published defaults."""
    return {name: recipe for family in families().values() for name, recipe in family.recipes.items()}


def get_recipe(name: str) -> RecipeFields:
    """The recipe of that name with its published defaults (a frozen dataclass of its family)."""
    known = recipes()
    if name not in known:
        raise ConfigError(f"unknown recipe {name!r}; choose from {', '.join(known)}.")
    return known[name]


def family_of(recipe) -> Family:
    """The family a recipe object belongs to."""
    for family in families().values():
        if family.owns(recipe):
            return family
    raise ConfigError(f"no registered decoder family takes a {type(recipe).__name__}.")


def check_registered(recipe) -> None:
    """ConfigError unless ``recipe`` carries the name of one of its family's recipes (what a run
    directory is read back by; change a recipe's fields, not its name)."""
    family = family_of(recipe)
    if recipe.name not in family.recipes:
        raise ConfigError(f"unknown recipe {recipe.name!r}: the {family.name} family's recipes are "
                          f"{', '.join(family.recipes)}; start from one of them and change its fields.")


def family_for_model(model_name: str) -> Family:
    """The family whose recipes have ``model == model_name`` (how a saved recipe is read back)."""
    for family in families().values():
        if any(r.model == model_name for r in family.recipes.values()):
            return family
    raise ConfigError(f"saved recipe names model {model_name!r}, which no registered family builds.")


def checkpoint_family(kind: str) -> Family:
    """The family that imports published checkpoints of ``kind``."""
    kinds = {k: f for f in families().values() for k in f.checkpoint_kinds}
    if kind not in kinds:
        raise ConfigError(f"unknown checkpoint kind {kind!r}; choose from {', '.join(kinds)}.")
    return kinds[kind]
