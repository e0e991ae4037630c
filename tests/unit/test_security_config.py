"""Every combination of protocol and SASL/SSL settings: accepted with the librdkafka
properties it names, or refused with the field named. No accepted config connects weaker
than it says."""

from __future__ import annotations

import itertools

import pytest

from streamchaos.config import config_from_dict
from streamchaos.errors import ConfigError
from streamchaos.kafkaconf import admin_conf, consumer_conf, producer_conf

PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SASL = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u", "sasl_password": {"env": "PW"}}
SSL = {
    "ssl_ca_location": "/etc/ca.pem",
    "ssl_certificate_location": "/etc/cert.pem",
    "ssl_key_location": "/etc/key.pem",
    "ssl_key_password": {"env": "KEY_PW"},
}
SETTINGS = {
    "none": {},
    "sasl": SASL,
    "sasl without a password": {k: v for k, v in SASL.items() if k != "sasl_password"},
    "ssl ca only": {"ssl_ca_location": "/etc/ca.pem"},
    "ssl, client certificate": SSL,
    "sasl and ssl": SASL | SSL,
}
CLIENT = {
    "no client properties": {},
    "a sasl.* property": {"consumer": {"sasl.kerberos.service.name": "kafka"}},
    "an ssl.* property": {"producer": {"ssl.endpoint.identification.algorithm": "https"}},
    "no certificate check": {"consumer": {"enable.ssl.certificate.verification": False}},
    "no host name check": {"producer": {"ssl.endpoint.identification.algorithm": "none"}},
    "security.protocol again": {"consumer": {"security.protocol": "PLAINTEXT"}},
}


def expected_problem(protocol: str, settings: dict, client: dict) -> str | None:
    """The field the config must be refused for, or None (written out, not derived from
    the code under test)."""
    sasl, ssl = protocol.startswith("SASL"), protocol.endswith("SSL")
    for name in settings:
        if (name.startswith("sasl") and not sasl) or (name.startswith("ssl") and not ssl):
            return f"kafka.security.{name}: protocol {protocol} does not use it"
    missing = [name for name in SASL if name not in settings]
    if sasl and missing:
        return f"kafka.security.{missing[0]}: required with protocol {protocol}"
    for section, props in client.items():
        for key, value in props.items():
            if str(value).lower() in ("false", "none"):
                return f"kafka.{section}.{key}: turns off the broker's certificate check"
            if key == "security.protocol":
                return f"kafka.{section}.{key}: set it as security.protocol"
            if (key.startswith("sasl.") and not sasl) or (key.startswith("ssl.") and not ssl):
                return f"kafka.{section}.{key}: security.protocol {protocol} does not use"
    return None


CASES = list(itertools.product(PROTOCOLS, SETTINGS, CLIENT))


@pytest.mark.parametrize(
    ("protocol", "settings", "client"), CASES, ids=["/".join(c) for c in CASES]
)
def test_security_combination(protocol, settings, client, monkeypatch):
    monkeypatch.setenv("PW", "sasl-secret")
    monkeypatch.setenv("KEY_PW", "key-secret")
    kafka = {"security": {"protocol": protocol, **SETTINGS[settings]}, **CLIENT[client]}
    raw = {"experiment": "e", "kafka": kafka, "routes": [{"source": "a", "shadow": "a.shadow"}]}
    problem = expected_problem(protocol, SETTINGS[settings], CLIENT[client])
    if problem is not None:
        with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
            config_from_dict(raw, env={})
        return
    cfg = config_from_dict(raw, env={})
    for conf in (consumer_conf(cfg), producer_conf(cfg), admin_conf(cfg)):
        assert conf["security.protocol"] == protocol
        if protocol.startswith("SASL"):
            assert (conf["sasl.mechanism"], conf["sasl.username"]) == ("SCRAM-SHA-512", "u")
            assert conf["sasl.password"] == "sasl-secret"
        else:
            assert not any(key.startswith("sasl.") for key in conf)
        for name, value in SETTINGS[settings].items():
            if name.startswith("ssl_"):
                expected = "key-secret" if name == "ssl_key_password" else value
                assert conf[name.replace("_", ".")] == expected
        if not protocol.endswith("SSL"):
            assert not any(key.startswith("ssl.") for key in conf)
