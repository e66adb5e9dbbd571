"""Original module path of the plugin base class (`from radical.edge.plugin_base import
Plugin`): the edge-side authoring API lives in `radical.edge.plugins.base`."""
from .plugins import loader as _loader  # noqa: F401  (lets Plugin.get_plugin_class find all)
from .plugins.base import Plugin, PluginSession

__all__ = ["Plugin", "PluginSession"]
