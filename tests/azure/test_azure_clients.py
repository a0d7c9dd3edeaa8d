"""The SDK clients as built for a target: every HTTP request to ARM is bounded by our
own connect/read timeouts (azure-core's default is 300 s each), verification stays on."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from arm_helpers import settings_for

from ledgerdrill.platforms.azure.clients import (
    REQUEST_CONNECT_TIMEOUT_S,
    REQUEST_READ_TIMEOUT_S,
    build_clients,
)


class NoCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> object:
        raise AssertionError("building a client must not ask for a token")


def test_each_request_is_bounded_and_verified(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = settings_for("https://127.0.0.1:9", str(ca), tmp_path, database=None)
    compute, _ = build_clients(settings, NoCredential())
    config = compute._client._pipeline._transport.connection_config
    assert (config.timeout, config.read_timeout) == (
        REQUEST_CONNECT_TIMEOUT_S,
        REQUEST_READ_TIMEOUT_S,
    )
    assert REQUEST_READ_TIMEOUT_S < 300
    assert config.verify == str(ca)
