"""Record codecs: Confluent wire framing, Avro via fastavro, registry access, JSON."""

from streamchaos.codec.avro import AvroCodec, BytesCodec, Codec, Decoded, JsonCodec, codec_for
from streamchaos.codec.registry import ParsedSchema, Registry, RegistryUnavailable
from streamchaos.codec.wire import Undecodable, frame, split

__all__ = [
    "AvroCodec",
    "BytesCodec",
    "Codec",
    "Decoded",
    "JsonCodec",
    "ParsedSchema",
    "Registry",
    "RegistryUnavailable",
    "Undecodable",
    "codec_for",
    "frame",
    "split",
]
