"""Configuration: the YAML file's schema, its loader with located errors, and the wiring."""

from canary_tui.config.loader import ConfigError, load_config
from canary_tui.config.schema import Config

__all__ = ["Config", "ConfigError", "load_config"]
