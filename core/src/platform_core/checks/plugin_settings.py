"""Each plugin's settings model validated against its configuration."""

from __future__ import annotations

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
