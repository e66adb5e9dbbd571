"""Typed description of a plugin's portal UI (`Plugin.ui_config`).

A plugin may give `ui_config` as a plain dict or as a `UIConfig`; the edge announces it as
a dict (`ui_config_to_dict`). Field names are those the portal and the original
`radical.edge.ui_schema` use, so plugins written against either keep working.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UIFieldOption(BaseModel):
    """One choice of a select field."""

    value: str
    label: str | None = None


class UIField(BaseModel):
    """A form input; `css_class` is how page scripts find its value."""

    name: str
    label: str
    type: str = "text"  # text, select, number, textarea, checkbox, hidden, ...
    css_class: str | None = None
    default: str | None = None
    placeholder: str | None = None
    required: bool = True
    options: list[str | UIFieldOption] | None = None
    options_endpoint: str | None = None
    options_value_field: str | None = "name"
    options_label_field: str | None = "name"
    column: int | None = None


class UIFormSubmit(BaseModel):
    label: str = "Submit"
    style: str = "success"
    endpoint: str | None = None  # default: submit/{sid}


class UIForm(BaseModel):
    id: str
    title: str
    layout: str = "single"  # single, grid2, grid3
    fields: list[UIField] = Field(default_factory=list)
    submit: UIFormSubmit | None = None


class UIMonitor(BaseModel):
    id: str
    title: str
    type: str = "raw"  # task_list, metrics, table, raw
    css_class: str | None = None
    empty_text: str = ""
    auto_load: str | None = None  # endpoint called when the page opens


class UINotifications(BaseModel):
    """Which SSE topic updates the page, and where an item's id and state are."""

    topic: str
    id_field: str
    state_field: str = "state"


class UIConfig(BaseModel):
    title: str
    icon: str = "🔌"
    description: str | None = None
    refresh_button: bool = False
    auto_load: str | None = None
    forms: list[UIForm] = Field(default_factory=list)
    monitors: list[UIMonitor] = Field(default_factory=list)
    notifications: UINotifications | None = None
    stub_message: str | None = None


def ui_config_to_dict(config: UIConfig | dict | None) -> dict[str, Any]:
    """The JSON form of a ui_config (dicts pass through, None gives {})."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return config
    return config.model_dump(exclude_none=True)


def validate_ui_config(config: UIConfig | dict | None) -> UIConfig:
    """A checked `UIConfig` from a dict, a `UIConfig` or None."""
    if config is None:
        return UIConfig(title="Plugin")
    if isinstance(config, UIConfig):
        return config
    if isinstance(config, dict):
        return UIConfig(**config)
    raise ValueError(f"invalid ui_config type: {type(config).__name__}")
