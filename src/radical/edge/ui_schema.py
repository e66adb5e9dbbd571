"""Original module path of the UI schema (`UIConfig`, `ui_config_to_dict`, ...)."""
from .plugins.ui_schema import (UIConfig, UIField, UIFieldOption, UIForm, UIFormSubmit,
                                UIMonitor, UINotifications, ui_config_to_dict,
                                validate_ui_config)

__all__ = ["UIConfig", "UIField", "UIFieldOption", "UIForm", "UIFormSubmit", "UIMonitor",
           "UINotifications", "ui_config_to_dict", "validate_ui_config"]
