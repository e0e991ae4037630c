"""streamchaos: make ML feature pipelines on Kafka fail on purpose, safely, with ground truth.

>>> import streamchaos
>>> cfg = streamchaos.config_from_dict({"experiment": "x", "routes": [
...     {"source": "features", "shadow": "features.shadow"}]}, env={})
>>> cfg.routes[0].shadow
'features.shadow'

``streamchaos.Bridge(cfg).start()`` runs the bridge in a background thread;
``streamchaos.evaluation`` scores detectors against the ledger's episodes.
"""

from typing import TYPE_CHECKING, Any

from streamchaos.errors import BridgeError, CodecError, ConfigError, StreamChaosError

if TYPE_CHECKING:
    from streamchaos.bridge import Bridge
    from streamchaos.config import Config, config_from_dict, load_config

__all__ = [
    "Bridge",
    "BridgeError",
    "CodecError",
    "Config",
    "ConfigError",
    "StreamChaosError",
    "config_from_dict",
    "load_config",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Imported on first use: the bridge pulls in the Kafka client, the config discovers
    the faults (``faults.registry``), which the evaluation side never needs."""
    if name == "Bridge":
        from streamchaos.bridge import Bridge

        return Bridge
    if name in ("Config", "config_from_dict", "load_config"):
        from streamchaos import config

        return getattr(config, name)
    raise AttributeError(name)
