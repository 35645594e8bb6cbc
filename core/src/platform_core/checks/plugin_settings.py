"""Each plugin's settings model validated against its configuration."""

from __future__ import annotations

import difflib
import os

from pydantic import BaseModel, ValidationError

from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_core.redaction import error_message
from platform_core.settings import Settings, plugin_env_prefix, plugin_values


def check(settings: Settings, registry: Registry, problems: list[str]
          ) -> dict[type[BaseModel], BaseModel]:
    """The validated settings of every plugin that registers a model; every failing field
    is reported with the place to set it."""
    resolved: dict[type[BaseModel], BaseModel] = {}
    for c in registry.settings_models:
        values = plugin_values(settings, c.plugin.name)
        try:
            resolved[c.item] = c.item.model_validate(values)
        except (TypeError, AttributeError, LookupError, ArithmeticError) as exc:
            problems.append(blame(c.plugin, f"settings model {c.item.__name__} raised "
                                            f"{type(exc).__name__}: {exc}"))
        except ValidationError as exc:
            prefix = plugin_env_prefix(c.plugin.name)
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or "(model)"
                message = error_message(c.item, err)
                problems.append(
                    f"{c.plugin.label} setting `{field}`: {message}; set it under "
                    f"[plugin.{c.plugin.name}] in platform.toml or as {prefix}{field.upper()}"
                )
    return resolved


def unknown_fields(settings: Settings, registry: Registry) -> list[str]:
    """A warning for each ``PLATFORM_<PLUGIN>__FIELD`` variable and ``[plugin.NAME]`` key
    that names no field of the plugin's settings model (a model that forbids extra fields
    reports them as problems instead); they would be silently ignored."""
    warnings: list[str] = []
    models = {c.plugin.name: c for c in registry.settings_models}
    for name, info in registry.plugins.items():
        prefix = plugin_env_prefix(name)
        given = [(key, f"{prefix}{key[len(prefix):].upper()}") for key in sorted(os.environ)
                 if key.upper().startswith(prefix)]
        given += [(key, f"[plugin.{name}] {key} in platform.toml")
                  for key in sorted(settings.plugin.get(name, {}))]
        if not given:
            continue
        model = models.get(name)
        if model is None:
            for _, where in given:
                warnings.append(f"{where} is ignored: {info.label} registers no settings")
            continue
        if model.item.model_config.get("extra") == "forbid":
            continue
        fields = {n.lower(): n for n in model.item.model_fields}
        fields.update((alias.lower(), alias) for f in model.item.model_fields.values()
                      for alias in (f.alias, f.validation_alias) if isinstance(alias, str))
        for key, where in given:
            field = key[len(prefix):].lower() if key.upper().startswith(prefix) else key.lower()
            if field in fields:
                continue
            close = difflib.get_close_matches(field, list(fields), n=1)
            hint = ""
            if close:
                hint = (f"; did you mean {prefix}{close[0].upper()}?" if where.startswith(prefix)
                        else f"; did you mean `{fields[close[0]]}`?")
            known = ", ".join(sorted(model.item.model_fields)) or "none"
            warnings.append(f"{where} is ignored: {info.label} has no setting `{field}` "
                            f"(its settings: {known}){hint}")
    return warnings
