"""Original module path of the session base class."""
from .plugins.base import PluginSession

__all__ = ["PluginSession"]
