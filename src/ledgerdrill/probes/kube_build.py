"""A ``kube`` catalogue entry -> a ``KubeProbe`` with its own API client (read-only:
lists and watches). Imported only when a catalogue has a ``kube`` probe, so the
sandbox's catalogues never load the Kubernetes client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import config
from ledgerdrill.errors import ConfigError
from ledgerdrill.probes.kube import KubeProbe

if TYPE_CHECKING:
    from ledgerdrill.probes.catalogue import KubeEntry


def build_kube_probe(
    entry: KubeEntry, text: Callable[[Any, str, str], str], source: Path | str
) -> KubeProbe:
    kubeconfig = text(entry, "kubeconfig", entry.kubeconfig) or None
    context = text(entry, "context", entry.context) or None
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False
        )
    except (OSError, config.ConfigException) as exc:
        where = f"kubeconfig {kubeconfig or '~/.kube/config'}, context {context or 'current'}"
        raise ConfigError(f"{source}: probe {entry.name}: {where}: {exc}") from None
    return KubeProbe(
        entry.name,
        api,
        text(entry, "namespace", entry.namespace),
        deployments=entry.deployments,
        node_selector=entry.node_selector,
        pod_selector=entry.pod_selector,
        restarts=entry.restarts,
    )
