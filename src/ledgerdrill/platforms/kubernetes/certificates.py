"""CertificateControl on the ingress TLS secret (``type: kubernetes.io/tls``).

- backup: a copy of the secret in the same namespace (``<secret>-ledgerdrill-backup-<n>``,
  labelled ``ledgerdrill.io/backup-of``, annotated with the original's resourceVersion
  and the SHA-256 of its data). The private key so never leaves the cluster or lands
  in the journal, and the copy survives a SIGKILLed harness for ``cleanup``.
- install ``valid``/``expired``: a self-signed certificate for the same DNS names,
  written into the secret (PUT with the resourceVersion read); ``none``: the secret is
  deleted, so the ingress falls back to its default certificate (Traefik's).
- restore: the backup's data back into the secret (re-created when deleted), then the
  backup is deleted. A missing backup means it was restored already (idempotent).
- served: with ``entry_url``, the certificate read off the wire (TLS handshake with SNI);
  without it, the secret's certificate (weaker evidence, said in ``describe``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from urllib.parse import urlsplit

from kubernetes import client
from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import CertificateInfo
from ledgerdrill.platforms.kubernetes import tls
from ledgerdrill.platforms.kubernetes.api import Kube, call, retry_conflicts, status_of, wait_for
from ledgerdrill.targets import KubernetesPlatformSettings

BACKUP_OF = "ledgerdrill.io/backup-of"


def data_hash(data: Mapping[str, bytes | str]) -> str:
    text = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
    return hashlib.sha256(json.dumps(text, sort_keys=True).encode()).hexdigest()


class CertificateOps:
    kube: Kube
    settings: KubernetesPlatformSettings

    def _secret(self, name: str) -> client.V1Secret | None:
        ns = self.settings.namespace
        try:
            return call(f"read secret {ns}/{name}",
                        lambda: self.kube.core.read_namespaced_secret(name, ns))  # fmt: skip
        except PlatformError as exc:
            if status_of(exc) == 404:
                return None
            raise

    def _secret_cert(self) -> bytes | None:
        secret = self._secret(str(self.settings.ingress_tls_secret))
        crt = (secret.data or {}).get("tls.crt") if secret else None
        return base64.b64decode(crt) if crt else None

    def served_certificate(self) -> CertificateInfo:
        in_secret = self._secret_cert()
        if self.settings.entry_url:
            url = urlsplit(self.settings.entry_url)
            host = url.hostname or "127.0.0.1"
            der = tls.served_certificate(host, url.port or 443, host, timeout_s=5.0)
            served = tls.load(der)
        elif in_secret is not None:
            served = tls.load(in_secret)
        else:
            return CertificateInfo("(none)", "", "", variant="none")
        ours = in_secret is not None and tls.fingerprint(tls.load(in_secret)) == tls.fingerprint(
            served
        )
        variant = "none" if not ours else "expired" if tls.is_expired(served) else "valid"
        return CertificateInfo(
            subject=served.subject.rfc4514_string(),
            not_after_iso=served.not_valid_after_utc.isoformat(),
            fingerprint_sha256=tls.fingerprint(served),
            variant=variant,
        )

    def backup_certificate(self) -> str:
        name, ns = str(self.settings.ingress_tls_secret), self.settings.namespace
        secret = self._secret(name)
        if secret is None or secret.metadata is None:
            raise PlatformError(f"ingress TLS secret {ns}/{name} does not exist")
        data = dict(secret.data or {})
        backup = client.V1Secret(
            metadata=client.V1ObjectMeta(
                generate_name=f"{name}-ledgerdrill-backup-",
                labels={BACKUP_OF: name},
                annotations={
                    "ledgerdrill.io/original-resource-version": str(
                        secret.metadata.resource_version
                    ),
                    "ledgerdrill.io/data-sha256": data_hash(data),
                },
            ),
            type=secret.type, data=data,
        )  # fmt: skip
        made = call(f"back up secret {name}",
                    lambda: self.kube.core.create_namespaced_secret(ns, backup))  # fmt: skip
        return str(made.metadata.name) if made.metadata else ""

    def install_certificate(self, variant: str) -> None:
        name, ns = str(self.settings.ingress_tls_secret), self.settings.namespace
        if variant == "none":
            try:
                call(f"delete secret {name}",
                     lambda: self.kube.core.delete_namespaced_secret(name, ns))  # fmt: skip
            except PlatformError as exc:
                if status_of(exc) != 404:
                    raise
            self._await_variant("none")
            return
        current = self._secret_cert()
        hosts = tls.dns_names(tls.load(current)) if current else []
        hosts = hosts or [
            urlsplit(self.settings.entry_url or "https://localhost").hostname or "localhost"
        ]
        pem = tls.make_certificate(hosts, expired=variant == "expired")
        self._write(name, {"tls.crt": base64.b64encode(pem.cert).decode(),
                           "tls.key": base64.b64encode(pem.key).decode()})  # fmt: skip
        self._await_variant(variant)

    def _write(self, name: str, data: dict[str, bytes | str]) -> None:
        ns = self.settings.namespace

        def attempt() -> None:
            secret = self._secret(name)
            if secret is None:
                new = client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                                      type="kubernetes.io/tls", data=data)  # fmt: skip
                call(f"create secret {name}",
                     lambda: self.kube.core.create_namespaced_secret(ns, new))  # fmt: skip
                return
            secret.data = data
            call(f"update secret {name}",
                 lambda: self.kube.core.replace_namespaced_secret(name, ns, secret))  # fmt: skip

        retry_conflicts(f"write secret {name}", attempt)

    def _await_variant(self, variant: str) -> None:
        """The ingress reloads secrets asynchronously: wait until the wire shows it."""
        wait_for(f"the ingress to serve a {variant} certificate",
                 lambda: self.served_certificate().variant == variant,
                 self.settings.wait_timeout, self.settings.poll_interval)  # fmt: skip

    def restore_certificate(self, backup_ref: str) -> None:
        name, ns = str(self.settings.ingress_tls_secret), self.settings.namespace
        backup = self._secret(backup_ref)
        if backup is None:
            return  # restored (and the backup removed) already
        labels = (backup.metadata.labels if backup.metadata else None) or {}
        if labels.get(BACKUP_OF) != name:
            raise PlatformError(f"secret {backup_ref} is not a backup of {name}")
        self._write(name, dict(backup.data or {}))
        self._await_variant(self._variant_of(backup))
        call(f"delete backup {backup_ref}",
             lambda: self.kube.core.delete_namespaced_secret(backup_ref, ns))  # fmt: skip

    @staticmethod
    def _variant_of(secret: client.V1Secret) -> str:
        crt = (secret.data or {}).get("tls.crt")
        if not crt:
            return "none"
        return "expired" if tls.is_expired(tls.load(base64.b64decode(crt))) else "valid"
