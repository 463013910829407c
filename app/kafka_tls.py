"""TLS to the brokers from the settings: the trusted CA (`KAFKA_TRUSTED_CERT_B64`) and,
for brokers that require client certificates, the pair `KAFKA_CLIENT_CERT_B64` /
`KAFKA_CLIENT_CERT_KEY_B64`, all Base64 of PEM as the original took them."""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from pathlib import Path

from app.settings import Settings, SettingsError


def _pem(name: str, value: str) -> str:
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise SettingsError(f"{name} must be Base64 of a PEM file") from None
    if "-----BEGIN " not in text:
        raise SettingsError(f"{name} must be Base64 of a PEM file (no BEGIN line found)")
    return text


def uses_tls(settings: Settings) -> bool:
    return bool(settings.KAFKA_TRUSTED_CERT_B64 or settings.KAFKA_CLIENT_CERT_B64)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client context that trusts the configured CA (the system's when none is given)
    and presents the client certificate when one is given."""
    cert, key = settings.KAFKA_CLIENT_CERT_B64, settings.KAFKA_CLIENT_CERT_KEY_B64
    if bool(cert) != bool(key):
        raise SettingsError("KAFKA_CLIENT_CERT_B64 and KAFKA_CLIENT_CERT_KEY_B64 go together")
    trusted = settings.KAFKA_TRUSTED_CERT_B64
    context = ssl.create_default_context(
        cadata=_pem("KAFKA_TRUSTED_CERT_B64", trusted) if trusted else None
    )
    if cert and key:
        # ssl loads a certificate pair only from files: a private directory, gone at once
        with tempfile.TemporaryDirectory(prefix="plugin-server-tls-") as folder:
            cert_file, key_file = Path(folder) / "client.pem", Path(folder) / "client.key"
            for path, text in (
                (cert_file, _pem("KAFKA_CLIENT_CERT_B64", cert)),
                (key_file, _pem("KAFKA_CLIENT_CERT_KEY_B64", key)),
            ):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(text)
            context.load_cert_chain(cert_file, key_file)
    return context
