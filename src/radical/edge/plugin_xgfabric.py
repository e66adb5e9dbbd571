"""Original module path of the xgfabric plugin: `PluginXGFabric`, `XGFabricClient`,
`XGFabricSession`, the config dataclasses and their converters."""
from typing import Any

from ._aliases import resolve
from .plugins.xgfabric.client import XGFabricClient as XGFabricClient

__all__ = ["PluginXGFabric", "XGFabricClient", "XGFabricSession", "ResourceConfig",
           "WorkflowConfig", "ClusterStatus", "WorkflowState", "config_to_dict",
           "dict_to_config", "dict_to_resource_config"]

_LAZY = {
    "PluginXGFabric": "radical.edge.plugins.xgfabric.plugin:XGFabricPlugin",
    "XGFabricSession": "radical.edge.plugins.xgfabric.session:XGFabricSession",
    "ResourceConfig": "radical.edge.plugins.xgfabric.config:ResourceConfig",
    "WorkflowConfig": "radical.edge.plugins.xgfabric.config:WorkflowConfig",
    "config_to_dict": "radical.edge.plugins.xgfabric.config:config_to_dict",
    "dict_to_config": "radical.edge.plugins.xgfabric.config:dict_to_config",
    "dict_to_resource_config": "radical.edge.plugins.xgfabric.config:dict_to_resource_config",
    "ClusterStatus": "radical.edge.plugins.xgfabric.state:ClusterStatus",
    "WorkflowState": "radical.edge.plugins.xgfabric.state:WorkflowState",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
