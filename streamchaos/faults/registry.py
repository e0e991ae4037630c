"""Fault discovery: adding a fault is adding one module, and editing nothing else.

A module is a fault module when it defines a concrete ``Fault`` subclass whose ``Config``
names its YAML ``type`` (a ``Literal`` default). Modules are searched in
``streamchaos.faults`` and then in every package named in ``STREAMCHAOS_FAULT_PACKAGES``
(comma-separated, importable, e.g. ``mycompany.faults``). The config union, ``streamchaos
faults``, the README's fault table and the contract tests read ``FAULTS`` from here.

>>> sorted(FAULTS)[:3], FAULTS["delay"].__name__
(['corrupt', 'delay', 'drift'], 'Delay')
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Union, get_args

from pydantic import Field

from streamchaos.errors import ConfigError
from streamchaos.faults.base import DecodingFault, Fault, FaultConfig

PACKAGES_ENV = "STREAMCHAOS_FAULT_PACKAGES"
BUILTIN = "streamchaos.faults"


def search_path(env: Mapping[str, str] | None = None) -> list[str]:
    """The packages searched for fault modules: the built-in ones first."""
    extra = (os.environ if env is None else env).get(PACKAGES_ENV, "")
    return [BUILTIN, *(name.strip() for name in extra.split(",") if name.strip())]


def discover(packages: Iterable[str]) -> dict[str, type[Fault]]:
    """Every fault class in the packages' modules, by YAML type name (sorted)."""
    found: dict[str, type[Fault]] = {}
    for package in packages:
        for module in _modules(package):
            for cls in _faults_in(module):
                name = type_name(cls)
                if name in found:
                    raise ConfigError(
                        f"{PACKAGES_ENV}: fault type {name!r} is defined by both "
                        f"{found[name].__module__} and {cls.__module__}"
                    )
                found[name] = cls
    return dict(sorted(found.items()))


def type_name(cls: type[Fault]) -> str:
    """The YAML ``type`` a fault class answers to: its config's ``type`` default."""
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, FaultConfig)):
        raise ConfigError(f"{cls.__module__}.{cls.__name__}: Config must be a FaultConfig")
    field = config.model_fields["type"]
    if not isinstance(field.default, str) or get_args(field.annotation) != (field.default,):
        raise ConfigError(
            f"{config.__module__}.{config.__name__}.type: give it one name, the same in the "
            'Literal and as the default, e.g. type: Literal["flip_key"] = "flip_key"'
        )
    return field.default


def _modules(package: str) -> list[object]:
    try:
        pkg = importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(f"{PACKAGES_ENV}: cannot import {package!r}: {exc}") from exc
    paths = getattr(pkg, "__path__", None)
    if paths is None:
        raise ConfigError(f"{PACKAGES_ENV}: {package!r} is a module, not a package")
    names = sorted(info.name for info in pkgutil.iter_modules(paths))
    modules: list[object] = []
    for name in names:
        try:
            modules.append(importlib.import_module(f"{package}.{name}"))
        except Exception as exc:  # a fault module that does not import is named, not a traceback
            raise ConfigError(f"fault module {package}.{name} does not import: {exc!r}") from exc
    return modules


def _faults_in(module: object) -> list[type[Fault]]:
    """The concrete fault classes a module defines (not the ones it imports)."""
    name = getattr(module, "__name__", "")
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Fault)
        and obj.__module__ == name
        and not inspect.isabstract(obj)
    ]


FAULTS: dict[str, type[Fault]] = discover(search_path())
DECODING_FAULTS = frozenset(
    name for name, cls in FAULTS.items() if issubclass(cls, DecodingFault)
)  # they read record values: their route needs format avro or json

if TYPE_CHECKING:
    FaultSpec = FaultConfig
else:  # the discriminated union of every discovered config, tagged by ``type``
    FaultSpec = Annotated[
        Union[tuple(cls.Config for cls in FAULTS.values())],  # noqa: UP007 (built at run time)
        Field(discriminator="type"),
    ]
