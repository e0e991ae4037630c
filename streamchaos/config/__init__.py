"""The experiment file: pydantic models, safety rules and ``load_config``.

Every model forbids unknown keys, so a typo fails at load time instead of silently
turning a fault or a setting off. Errors carry the field path, e.g. ``routes[1].shadow``.
``clients`` holds the Kafka and registry settings, ``experiment`` the routes and the
shadow-only rules, ``load`` the YAML and the error messages.
"""

from streamchaos.config.clients import KafkaSettings, SchemaRegistrySettings, SecretRef
from streamchaos.config.experiment import Config, shadow_only_problems
from streamchaos.config.load import config_from_dict, format_validation_error, load_config
from streamchaos.config.route import Route

__all__ = [
    "Config",
    "KafkaSettings",
    "Route",
    "SchemaRegistrySettings",
    "SecretRef",
    "config_from_dict",
    "format_validation_error",
    "load_config",
    "shadow_only_problems",
]
