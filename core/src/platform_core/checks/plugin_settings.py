"""Each plugin's settings model validated against its configuration."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError

from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_core.redaction import error_message
from platform_core.settings import Settings, plugin_env_prefix, plugin_inputs, plugin_values


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
    models = {c.plugin.name: c.item for c in registry.settings_models}
    for name, info in registry.plugins.items():
        given = sorted(plugin_inputs(settings, name), key=lambda i: i[2])
        model = models.get(name)
        if model is None:
            warnings += [f"{where} is ignored: {info.label} registers no settings"
                         for _, _, where in given]
            continue
        if not given or model.model_config.get("extra") == "forbid":
            continue
        fields = {n.lower(): n for n in model.model_fields}
        fields.update((alias.lower(), alias) for f in model.model_fields.values()
                      for alias in (f.alias, f.validation_alias) if isinstance(alias, str))
        known = ", ".join(sorted(model.model_fields)) or "none"
        for field, _, where in given:
            if field.lower() in fields:
                continue
            close = difflib.get_close_matches(field.lower(), list(fields), n=1)
            hint = ""
            if close and where.startswith("PLATFORM_"):
                hint = f"; did you mean {plugin_env_prefix(name)}{close[0].upper()}?"
            elif close:
                hint = f"; did you mean `{fields[close[0]]}`?"
            warnings.append(f"{where} is ignored: {info.label} has no setting `{field}` "
                            f"(its settings: {known}){hint}")
    return warnings
