"""Typed plugin options: declaration, parsing of ``name=value`` strings, validation.

Every knob of a plugin (hyperparameters and ablation toggles alike) is an :class:`Option`,
so the CLI, the sweep files and ``mvbench show`` all read one declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mvbench.errors import MvbenchError, unknown_name

_TYPES = ("bool", "int", "float", "str", "list[int]", "list[float]", "list[str]")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One declared option of a plugin.

    ``type`` is one of ``bool, int, float, str, list[int], list[float], list[str]``;
    ``choices`` restricts the allowed values (for lists: each element); ``minimum`` and
    ``maximum`` bound numbers (inclusive). ``default`` may be ``None`` for "not set",
    e.g. an automatic value chosen by the plugin. ``ablation`` marks one of the paper's
    ablation toggles: a run that moves it off its faithful value (the default, or the
    dataset's preset) is an ablation, and the leaderboard does not set the paper's
    full-model number beside it.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    ablation: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"option {self.name!r}: type {self.type!r} is not one of {_TYPES}")
        if self.default is not None:
            object.__setattr__(self, "default", self.validate(self.default))

    @property
    def is_list(self) -> bool:
        return self.type.startswith("list[")

    @property
    def element_type(self) -> str:
        return self.type[5:-1] if self.is_list else self.type

    def parse(self, text: str) -> Any:
        """Parse a command-line string; lists are comma-separated (``[1,2]`` also accepted)."""
        text = text.strip()
        if text.lower() in {"none", "null"} and self.default is None:
            return None
        if self.is_list:
            body = text[1:-1] if text.startswith("[") and text.endswith("]") else text
            items = [part.strip() for part in body.split(",") if part.strip()]
            return self.validate([self._parse_scalar(item) for item in items])
        return self.validate(self._parse_scalar(text))

    def _parse_scalar(self, text: str) -> Any:
        kind = self.element_type
        try:
            if kind == "bool":
                low = text.lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise ValueError
            if kind == "int":
                value = float(text)
                if not value.is_integer():
                    raise ValueError
                return int(value)
            if kind == "float":
                return float(text)
        except ValueError:
            raise self._bad(text) from None
        return text

    def validate(self, value: Any) -> Any:
        """Check (and normalise) a Python value; raise a one-line error naming the option."""
        if value is None and self.default is None:
            return None
        if self.is_list:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise self._bad(value)
            return tuple(self._validate_scalar(item) for item in value)
        return self._validate_scalar(value)

    def _validate_scalar(self, value: Any) -> Any:
        kind = self.element_type
        if kind == "bool":
            if not isinstance(value, bool):
                raise self._bad(value)
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise self._bad(value)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._bad(value)
            value = float(value)
        elif not isinstance(value, str):
            raise self._bad(value)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise MvbenchError(f"option {self.name!r}: {value!r} is not allowed; choose one of {allowed}")
        if self.minimum is not None and value < self.minimum:
            raise MvbenchError(f"option {self.name!r}: {value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise MvbenchError(f"option {self.name!r}: {value!r} is above the maximum {self.maximum}")
        return value

    def _bad(self, value: Any) -> MvbenchError:
        example = {"bool": "true", "int": "3", "float": "0.5", "str": "text"}[self.element_type]
        if self.is_list:
            example = f"{example},{example}"
        return MvbenchError(
            f"option {self.name!r}: {value!r} is not a valid {self.type}; e.g. {self.name}={example}"
        )


# The options most training methods share, declared once so that their names, types and bounds
# agree across methods; each method still states its own default and, where it says more, help.

def epochs(name: str, default: int, help_text: str) -> Option:
    """A count of epochs (or steps) of one stage; 0 skips the stage."""
    return Option(name, "int", default, help_text, minimum=0)


def learning_rate(default: float, help_text: str = "Adam learning rate") -> Option:
    return Option("lr", "float", default, help_text, minimum=0.0)


def adam_options(lr: float, lr_help: str, weight_decay: float) -> tuple[Option, Option]:
    """``lr`` and ``weight_decay`` of a method trained by one Adam optimiser."""
    return learning_rate(lr, lr_help), Option("weight_decay", "float", weight_decay, "Adam weight decay", minimum=0.0)


def autoencoder_options(hidden: Sequence[int], feature_dim: int, feature_help: str) -> tuple[Option, Option]:
    """``hidden`` and ``feature_dim`` of per-view MLP autoencoders (mvbench.nn.MultiViewAutoencoder)."""
    return hidden_widths(hidden), layer_size("feature_dim", feature_dim, feature_help)


def batch_size(default: int, help_text: str = "mini-batch size", minimum: int = 1) -> Option:
    return Option("batch_size", "int", default, help_text, minimum=minimum)


def hidden_widths(default: Sequence[int],
                  help_text: str = "encoder hidden widths (the decoder mirrors them)") -> Option:
    return Option("hidden", "list[int]", tuple(default), help_text, minimum=1)


def layer_size(name: str, default: int, help_text: str) -> Option:
    """The width of one layer or feature space."""
    return Option(name, "int", default, help_text, minimum=1)


def choice(name: str, choices: Sequence[str], help_text: str, *, default: str | None = None,
           ablation: bool = False) -> Option:
    """A string option with a fixed set of values; the default is the first unless given."""
    return Option(name, "str", choices[0] if default is None else default, help_text, choices=tuple(choices),
                  ablation=ablation)


def kmeans_restarts(default: int, help_text: str = "k-means restarts; the lowest inertia wins") -> Option:
    return Option("kmeans_n_init", "int", default, help_text, minimum=1)


def split_assignment(text: str) -> tuple[str, str]:
    """Split ``name=value``; the error names the expected form."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise MvbenchError(f"expected name=value, got {text!r}; e.g. --set lr=0.001")
    return name.strip(), value


def resolve_options(
    declared: Iterable[Option],
    given: Mapping[str, Any] | None = None,
    *,
    owner: str = "plugin",
) -> dict[str, Any]:
    """Merge ``given`` (strings from the CLI or typed values from a suite file) into defaults.

    Unknown names raise an error listing the valid ones with a "did you mean".
    """
    by_name = {option.name: option for option in declared}
    values = {name: option.default for name, option in by_name.items()}
    for name, raw in (given or {}).items():
        if name not in by_name:
            raise unknown_name(f"option of {owner}", name, by_name)
        option = by_name[name]
        values[name] = option.parse(raw) if isinstance(raw, str) else option.validate(raw)
    return values


def ablated(declared: Iterable[Option], values: Mapping[str, Any],
            faithful: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The ablation toggles among ``declared`` whose value in ``values`` differs from the
    faithful one (``faithful`` overrides the defaults, e.g. a dataset preset). Values read
    back from JSON (lists for tuples) compare equal to the declared ones."""
    faithful = faithful or {}
    out = []
    for option in declared:
        if not option.ablation or option.name not in values:
            continue
        try:
            changed = option.validate(values[option.name]) != option.validate(
                faithful.get(option.name, option.default))
        except MvbenchError:
            changed = True  # a value the option no longer accepts (an old record) is not the faithful one
        if changed:
            out.append(option.name)
    return tuple(out)


_PYTHON_TYPES: dict[str, Any] = {"bool": bool, "int": int, "float": float, "str": str,
                                 "list[int]": tuple[int, ...], "list[float]": tuple[float, ...],
                                 "list[str]": tuple[str, ...]}


def options_class(name: str, options: Sequence[Option], *, owner: str) -> type:
    """A frozen dataclass with one typed field per declared option, and a classmethod
    ``from_options(values)`` that resolves and validates ``values`` against ``options`` (a
    misspelt name or a bad value is a one-line error, raised before any training). Methods read
    their options as attributes (``cfg.lr``) instead of declaring every field twice."""
    cls = dataclasses.make_dataclass(name, [(o.name, _PYTHON_TYPES[o.type]) for o in options], frozen=True)

    def from_options(klass: type, values: Mapping[str, Any] | None = None) -> Any:
        return klass(**resolve_options(options, values, owner=owner))

    cls.from_options = classmethod(from_options)  # type: ignore[attr-defined]
    cls.__doc__ = f"The resolved options of {owner}, typed."
    return cls
