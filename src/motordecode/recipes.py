"""Recipes: named, complete decoder configurations with the published defaults.

Each decoder family defines its recipe type (a frozen dataclass) and its published recipes in its
package; :mod:`motordecode.decoders.registry` knows them all. This module holds what every recipe
shares: field checks, ``key=value`` overrides (:func:`override`), reading a saved recipe back, and
the one conversion from milliseconds to samples (:func:`samples_in`).

Lengths in recipes are in milliseconds and map onto the recording's sample spacing ``step_ms``,
so the same recipe runs on 4 ms sessions and on 50 ms binned data.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace

from motordecode.errors import ConfigError


def samples_in(length_ms: float, step_ms: float, minimum: int = 1) -> int:
    """Samples covering ``length_ms`` at ``step_ms`` per sample: max(minimum, round(length / step))."""
    return max(minimum, round(length_ms / step_ms))


def check(name: str, checks: list[tuple[bool, str]]) -> None:
    """Raise ConfigError with the first failed check's message."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"recipe {name!r}: {message}.")


def numbers(recipe: str, field: str, text: str, positive: bool) -> list[float]:
    """A comma-separated list of numbers (all > 0, or all >= 0); ConfigError otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"recipe {recipe!r}: {field} must be comma-separated numbers, got {text!r}.") from None
    if not values or any(v <= 0 if positive else v < 0 for v in values):
        raise ConfigError(f"recipe {recipe!r}: {field} must be {'positive' if positive else 'non-negative'}, "
                          f"got {text!r}.")
    return values


class RecipeFields:
    """What every recipe dataclass has besides its fields: ``to_dict()`` (saved in config.json)."""

    def to_dict(self) -> dict:
        return asdict(self)


def get_recipe(name: str) -> RecipeFields:
    """The registered recipe ``name`` with its published defaults."""
    from motordecode.decoders.registry import get_recipe as lookup

    return lookup(name)


def changed_fields(recipe: RecipeFields) -> dict | None:
    """{field: value} of ``recipe`` that differ from the registered recipe of its name (what
    ``--set`` changed); None when no recipe of that name is registered."""
    try:
        default = get_recipe(recipe.name).to_dict()
    except ConfigError:
        return None
    return {key: value for key, value in recipe.to_dict().items() if default.get(key) != value}


def recipe_names() -> list[str]:
    from motordecode.decoders.registry import recipes

    return list(recipes())


def recipe_from_dict(data: dict):
    """A recipe saved with ``to_dict()`` (config.json), rebuilt as its family's type."""
    from motordecode.decoders.registry import family_for_model

    kind = family_for_model(data.get("model")).recipe_type
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"saved recipe has unknown fields {', '.join(sorted(unknown))}.")
    try:
        return kind(**data)
    except TypeError as exc:  # a missing field, or a value of the wrong type in an edited config.json
        raise ConfigError(f"saved recipe {data.get('name')!r} cannot be read ({exc}).") from None


def _parse(kind, text: str, key: str):
    if kind is bool or kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false.")
    try:
        return {"int": int, "float": float, "str": str}.get(kind, kind)(text)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: expected a value of type {kind}.") from None


def override(recipe, assignments: list[str] | dict):
    """A copy of ``recipe`` with fields set from ``key=value`` strings (or a dict of values)."""
    types = {f.name: f.type for f in fields(type(recipe)) if f.name != "name"}
    items = assignments.items() if isinstance(assignments, dict) else [split_assignment(a) for a in assignments]
    changes = {}
    for key, value in items:
        if key not in types:
            raise ConfigError(f"unknown recipe field {key!r}; fields are: {', '.join(types)}.")
        changes[key] = _parse(types[key], value, key) if isinstance(value, str) else value
    return replace(recipe, **changes)


def split_assignment(assignment: str) -> tuple[str, str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {assignment!r}.")
    return key.strip(), value.strip()
