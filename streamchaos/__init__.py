"""streamchaos: make ML feature pipelines on Kafka fail on purpose, safely, with ground truth.

>>> import streamchaos
>>> cfg = streamchaos.config_from_dict({"experiment": "x", "routes": [
...     {"source": "features", "shadow": "features.shadow"}]}, env={})
>>> cfg.routes[0].shadow
'features.shadow'

``streamchaos.Bridge(cfg).start()`` runs the bridge in a background thread;
``streamchaos.scoring`` scores detectors against the ledger's episodes.
"""

from typing import TYPE_CHECKING, Any

from streamchaos.config import Config, config_from_dict, load_config
from streamchaos.errors import BridgeError, CodecError, ConfigError, StreamChaosError

if TYPE_CHECKING:
    from streamchaos.bridge import Bridge

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
    if name == "Bridge":  # imported lazily: it pulls in the Kafka client
        from streamchaos.bridge import Bridge

        return Bridge
    raise AttributeError(name)
