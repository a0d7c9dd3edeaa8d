"""``ledgerdrill`` as a user runs it, with the fake ARM injected (tests only).

Usage: python tests/azure/ledgerdrill_with_fake_arm.py ENDPOINT_FILE ledgerdrill-args...
ENDPOINT_FILE is what ``FakeArmServer.endpoint_file`` wrote: the fake's https URL on
127.0.0.1 and its CA. The harness is told through ``clients.use_arm`` -- the production
code reads no environment variable to find a fake."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ledgerdrill import cli
from ledgerdrill.platforms.azure.clients import ArmOverride, use_arm
from ledgerdrill.testing.fake_arm import FakeCredential


def main(argv: list[str]) -> int:
    endpoint = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    use_arm(ArmOverride(endpoint["base_url"], endpoint["ca_file"], FakeCredential()))
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
