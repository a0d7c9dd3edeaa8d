"""The Kubernetes backend: kind clusters locally, AKS on game days.

Built on the official ``kubernetes`` client. Module per capability: ``nodes`` (NodeControl,
ZoneControl), ``workloads`` (ReleaseControl, CacheControl), ``database`` (CloudNativePG),
``certificates`` (the ingress TLS secret); ``fakeapi`` is the fake API server for tests.
"""

from ledgerdrill.platforms.kubernetes.platform import KubernetesPlatform

__all__ = ["KubernetesPlatform"]
