"""Reading a geometry configuration: a YAML file (or the defaults) plus dotted overrides.

:func:`load_config` applies ``section.field=value`` overrides (the CLI turns ``--variance.n 12`` into
one) and validates; any problem is a :class:`~genesis_ps.errors.ConfigError` naming the field
(``variance.checkpoints``, ``stride`` …).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from genesis_ps.errors import ConfigError
from genesis_ps.geometry.config import GeometryConfig, _Section

__all__ = ["leaf_fields", "load_config"]


def _section_of(ann: Any) -> type[_Section] | None:
    """The section type of a field annotated ``Section`` or ``Section | None``."""
    if isinstance(ann, type) and issubclass(ann, _Section):
        return ann
    args = [a for a in get_args(ann) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], _Section):
        return args[0]
    return None


def leaf_fields(model: type[BaseModel] = GeometryConfig, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted name, help)`` of every overridable field, nested sections flattened; an optional section
    (``clustering.judge``, ``clustering.power``) is settable whole (a YAML mapping) and field by field."""
    out: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        section = _section_of(info.annotation)
        if section is None or section is not info.annotation:
            out.append((f"{prefix}{name}", info.description or ""))
        if section is not None:
            out.extend(leaf_fields(section, f"{prefix}{name}."))
    return out


def _set(tree: dict[str, Any], dotted: str, value: Any, defaults: Mapping[str, Any]) -> None:
    """Set ``dotted`` in ``tree``; a section missing on the way starts from its default values."""
    parts = dotted.split(".")
    node, base = tree, defaults
    for part in parts[:-1]:
        base_child = base.get(part) if isinstance(base, Mapping) else None
        child = node.get(part)
        if not isinstance(child, dict):
            child = dict(base_child) if isinstance(base_child, Mapping) else {}
            node[part] = child
        node, base = child, base_child if isinstance(base_child, Mapping) else {}
    node[parts[-1]] = value


def _field_name(err: Mapping[str, Any]) -> str:
    loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
    msg = str(err.get("msg", ""))
    head = msg.removeprefix("Value error, ").split(":", 1)[0]
    if head in {name for name, _ in leaf_fields()}:  # model-level validators name their field first
        return head
    return ".".join(loc) or "config"


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Sequence[tuple[str, Any]] = ()
) -> GeometryConfig:
    """Read ``path`` (YAML; None: defaults), apply ``overrides`` (dotted name, value), validate."""
    tree: dict[str, Any] = {}
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError("--config", f"no such file: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError("--config", f"{p} is not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("--config", f"{p} must hold a mapping of sections, got {type(loaded).__name__}")
        tree = dict(loaded or {})
    defaults = GeometryConfig().model_dump() if overrides else {}
    for dotted, value in overrides:
        _set(tree, dotted, value, defaults)
    try:
        return GeometryConfig.model_validate(tree)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        field = _field_name(err)
        if msg.startswith(field + ":"):
            msg = msg[len(field) + 1 :].strip()
        raise ConfigError(field, msg) from None
