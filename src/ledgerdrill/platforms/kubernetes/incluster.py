"""Write a kubeconfig for the pod's own service account, with a context named like the
kind cluster (``kind-ledgerdrill``), so a target that allows only ``kind-*`` contexts
runs unchanged from a CronJob inside that cluster (deploy/kind/gameday-cronjob.yaml).

The token is referenced by ``tokenFile``, not copied: the kubelet rotates projected
service-account tokens, and the client re-reads the file.

    python -m ledgerdrill.platforms.kubernetes.incluster /work/kubeconfig [CONTEXT]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from ledgerdrill.errors import ConfigError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def incluster_kubeconfig(
    context: str = "kind-ledgerdrill",
    account: Path = SERVICE_ACCOUNT,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, object]:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: not inside a pod"
        )
    for name in ("token", "ca.crt", "namespace"):
        if not (account / name).is_file():
            raise ConfigError(f"{account / name}: missing (no service account mounted?)")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": str(account / "ca.crt")}}],
        "users": [{"name": context, "user": {"tokenFile": str(account / "token")}}],
        "contexts": [{"name": context, "context": {
            "cluster": context, "user": context,
            "namespace": (account / "namespace").read_text().strip()}}],
    }  # fmt: skip


def main(argv: Sequence[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m ledgerdrill.platforms.kubernetes.incluster PATH [CONTEXT]",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        config = incluster_kubeconfig(argv[1]) if len(argv) == 2 else incluster_kubeconfig()
    except ConfigError as exc:
        print(f"ledgerdrill: error: {exc}", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    print(f"wrote {path} (context {config['current-context']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
