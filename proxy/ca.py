"""The school's certificate authority for TLS interception.

Created on first run under `<data>/ca/` with mitmproxy's own store format
(so mitmproxy uses it as it is), named after the school.  The private key
file is mode 0600 (the service user only); the certificate to install on
school devices is `<data>/ca/mitmproxy-ca-cert.pem` (also `.cer` for
Android/ChromeOS and `.p12` for Windows), and is served at
`http://<block_page_name>/ca.pem`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from mitmproxy.certs import CertStore

logger = logging.getLogger(__name__)

BASENAME = "mitmproxy"   # mitmproxy's fixed store name (options.CONF_BASENAME)


def ensure_ca(ca_dir: Path, school_name: str) -> Path:
    """Create the CA if missing; return the path of the certificate to install."""
    key_file = ca_dir / f"{BASENAME}-ca.pem"
    if not key_file.exists():
        ca_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(ca_dir, 0o700)
        CertStore.create_store(ca_dir, BASENAME, 2048, organization="Schoolgate",
                               cn=f"Schoolgate CA ({school_name})"[:64])
        logger.info("created the school's CA in %s", ca_dir)
    for secret in (key_file, ca_dir / f"{BASENAME}-ca.p12"):
        if secret.exists():
            os.chmod(secret, 0o600)
    return ca_dir / f"{BASENAME}-ca-cert.pem"
