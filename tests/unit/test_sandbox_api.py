from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.api import TOKEN_FILE, ControlApi, ControlClient


def test_operations_round_trip_errors_and_auth(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def switchover(params: dict[str, Any]) -> str:
        calls.append(params)
        return "db-b"

    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("standby not streaming")

    api = ControlApi(tmp_path, {"db/switchover": switchover, "db/broken": broken})
    api.start()
    try:
        assert (tmp_path / TOKEN_FILE).stat().st_mode & 0o777 == 0o600
        client = ControlClient(api.url, tmp_path / TOKEN_FILE)
        assert client.call("db/switchover", to="db-b") == "db-b"
        assert calls == [{"to": "db-b"}]
        with pytest.raises(PlatformError, match="RuntimeError: standby not streaming"):
            client.call("db/broken")
        with pytest.raises(PlatformError, match="no operation 'nope'"):
            client.call("nope")
        assert httpx.post(f"{api.url}/db/switchover", json={}).status_code == 401
    finally:
        api.stop()
    with pytest.raises(PlatformError, match="sandbox API db/switchover"):
        ControlClient(api.url, tmp_path / TOKEN_FILE, timeout_s=2).call("db/switchover")
