"""One exception tree, so callers catch ``StreamChaosError`` and the CLI maps it to an exit code."""


class StreamChaosError(Exception):
    """Base of every error streamchaos raises on purpose."""


class ConfigError(StreamChaosError):
    """The experiment file is unusable; the message names the field path (exit code 2)."""


class BridgeError(StreamChaosError):
    """The bridge cannot run: broker, topics or delivery failed (exit code 1)."""


class CodecError(StreamChaosError):
    """A record could not be decoded or encoded; the message names the record."""


class FieldError(StreamChaosError):
    """A fault cannot apply to a record (a missing field, a wrong type, a refused schema):
    the record passes unchanged, the cause is logged once and counted."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
