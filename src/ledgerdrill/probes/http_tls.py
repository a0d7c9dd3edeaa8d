"""The HTTP probe (status, body, latency of one URL) and the TLS probe (what certificate
clients are served, and whether they can trust it).

The TLS probe tells failures apart -- an expired certificate, an untrusted one (the
server's default certificate), a name mismatch, nothing listening -- because a
certificate scenario must know *which* failure users saw, not just that HTTPS broke.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509

from ledgerdrill.probes.lean_http import LeanClient
from ledgerdrill.timeline import Sample, Timeline


def trust(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying context for ``ca_bundle`` (or the system's roots)."""
    return ssl.create_default_context(cafile=ca_bundle)


class HttpProbe:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        expect_status: int = 200,
        body_contains: str | None = None,
        ca_bundle: str | None = None,
        counts_for_rto: bool = True,
    ) -> None:
        self.name = name
        self.url = url
        self.expect_status = expect_status
        self.body_contains = body_contains
        self.counts_for_rto = counts_for_rto
        self.ca_bundle = ca_bundle
        self._client: LeanClient | None = None
        parts = urlsplit(url)
        self._base = f"{parts.scheme}://{parts.netloc}"
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        try:
            if self._client is None:  # http.client underneath: lean_http says why
                self._client = LeanClient(self._base, context=trust(self.ca_bundle))
            response = self._client.get(self._path, timeout=timeout_s)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, f"{type(exc).__name__}: {exc}")
        took = timeline.clock.now().seconds_since(start)
        ok = response.status_code == self.expect_status
        detail = f"HTTP {response.status_code}"
        if ok and self.body_contains is not None and self.body_contains not in response.text:
            ok, detail = False, f"HTTP {response.status_code} without {self.body_contains!r}"
        return Sample(self.name, start, ok, took, detail, {"status": float(response.status_code)})


class TlsProbe:
    """Connects, validates chain and host name against ``ca_bundle``, reports days to
    expiry and the SHA-256 fingerprint; "expires within ``warn_days``" is a warning."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        server_name: str = "localhost",
        ca_bundle: str | None = None,
        warn_days: float = 14.0,
        counts_for_rto: bool = True,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.server_name = server_name
        self.warn_days = warn_days
        self.counts_for_rto = counts_for_rto
        self.ca_bundle = ca_bundle
        self._verifying: ssl.SSLContext | None = None
        self._raw = ssl.create_default_context()
        self._raw.check_hostname = False
        self._raw.verify_mode = ssl.CERT_NONE

    def _peer(self, context: ssl.SSLContext, timeout_s: float) -> bytes:
        with (
            socket.create_connection((self.host, self.port), timeout=timeout_s) as sock,
            context.wrap_socket(sock, server_hostname=self.server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLError("no certificate presented")
        return der

    def sample(self, timeline: Timeline, timeout_s: float) -> Sample:
        start = timeline.clock.now()
        verify_error = ""
        try:
            if self._verifying is None:
                self._verifying = trust(self.ca_bundle)
            der = self._peer(self._verifying, timeout_s)
        except ssl.SSLCertVerificationError as exc:
            verify_error = str(exc.verify_message or exc.reason or exc)
            try:  # what was served, to say why it is not trusted
                der = self._peer(self._raw, timeout_s)
            except (OSError, ssl.SSLError) as inner:
                took = timeline.clock.now().seconds_since(start)
                return Sample(self.name, start, False, took, f"untrusted ({verify_error}); {inner}")
        except (OSError, ssl.SSLError) as exc:
            took = timeline.clock.now().seconds_since(start)
            return Sample(self.name, start, False, took, f"no TLS: {type(exc).__name__}: {exc}")
        took = timeline.clock.now().seconds_since(start)
        cert = x509.load_der_x509_certificate(der)
        fingerprint = hashlib.sha256(der).hexdigest()
        days_left = (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
        metrics = {"days_to_expiry": round(days_left, 3)}
        subject = cert.subject.rfc4514_string()
        summary = f"{subject} sha256:{fingerprint} expires in {days_left:.1f} days"
        if verify_error:
            reason = "expired" if days_left < 0 or "expired" in verify_error else "untrusted"
            return Sample(
                self.name, start, False, took, f"{reason}: {summary} ({verify_error})", metrics
            )
        warning = f"expires within {self.warn_days:g} days" if days_left < self.warn_days else ""
        return Sample(self.name, start, True, took, summary, metrics, warning)
