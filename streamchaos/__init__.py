"""streamchaos: make ML feature pipelines on Kafka fail on purpose, safely, with ground truth."""

from streamchaos.config import Config, load_config
from streamchaos.errors import BridgeError, CodecError, ConfigError, StreamChaosError

__all__ = [
    "BridgeError",
    "CodecError",
    "Config",
    "ConfigError",
    "StreamChaosError",
    "load_config",
]
__version__ = "0.1.0"
