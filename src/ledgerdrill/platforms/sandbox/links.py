"""The sandbox's network: every connection between two of its parts that a network fault
may act on runs through a ``NetLink`` the daemon hosts (issue 39).

Links are named ``<from>><to>``, one per direction of use:

- ``erp>db-a``, ``erp>db-b``, ``erp>dr-db``: the ERP's database connections. Its DSN names
  every member through its link (libpq picks the primary, as before);
- ``db-b>db-a``, ``dr-db>db-a``, ...: a standby's WAL stream from its primary (the
  ``primary_conninfo`` the HA controller writes goes through the link for that pair), so
  ``db-a``/``db-b`` is the link between the zones and every link with ``dr-db`` at one end
  crosses the regions.

Control-plane copies (``pg_basebackup``, ``pg_rewind``, base backups) and the harness's
own probes connect directly: a fault on the network between two components is not a
fault on the operator's console.

A link's listening port is kept in ``links.json`` in the state folder: a standby's
``primary_conninfo`` names it, and must still reach its primary after the daemon restarts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.netlink import LinkShape, NetLink
from ledgerdrill.platforms.sandbox.topology import Topology
from ledgerdrill.ports import free_port

LINKS_FILE = "links.json"
ERP = "erp"


def link_name(source: str, target: str) -> str:
    return f"{source}>{target}"


def saved_link_port(state_dir: Path, source: str, target: str) -> int | None:
    """The port of the link ``source>target`` as the daemon saved it (another process
    checking whether a standby streams from its primary compares the WAL receiver's
    sender with it), or None when the sandbox routes that pair directly."""
    try:
        saved = json.loads((state_dir / LINKS_FILE).read_text(encoding="utf-8"))
        port = saved["ports"][link_name(source, target)]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return port if isinstance(port, int) else None


def wan_between_regions(topology: Topology, round_trip_s: float) -> Callable[[str, str], LinkShape]:
    """A new link's shape: half ``round_trip_s`` each way when its two ends are nodes of
    different regions (a database member is named after its node; the ERP stays in its
    region's network), clean otherwise."""
    region = {node.name: node.region for node in topology.nodes}

    def shape(source: str, target: str) -> LinkShape:
        ends = {region.get(source), region.get(target)}
        if None in ends or len(ends) == 1 or round_trip_s <= 0:
            return LinkShape()
        return LinkShape(latency_ms=round_trip_s * 1000 / 2)

    return shape


class Links:
    """The daemon's links, made on first use and listening until ``stop``."""

    def __init__(
        self, state_dir: Path, default_shape: Callable[[str, str], LinkShape] | None = None
    ) -> None:
        self.path = state_dir / LINKS_FILE
        # the shape a new link starts with (source, target): a WAN between regions
        self.default_shape = default_shape or (lambda _source, _target: LinkShape())
        self._links: dict[str, NetLink] = {}
        self._lock = threading.Lock()
        self._ports: dict[str, int] = self._saved_ports()
        self._isolated: dict[str, LinkShape] = {}  # link -> its shape before isolate()

    def _saved_ports(self) -> dict[str, int]:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        ports = saved.get("ports") if isinstance(saved, dict) else None
        if not isinstance(ports, dict):
            return {}
        return {str(k): int(v) for k, v in ports.items() if isinstance(v, int)}

    def _save(self) -> None:
        body = {"ports": dict(sorted(self._ports.items()))}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def port(self, source: str, target: str, upstream_port: int) -> int:
        """The port ``source`` connects to for ``target`` (listening on 127.0.0.1 at
        ``upstream_port``): the link's, started now if it is not yet."""
        name = link_name(source, target)
        with self._lock:
            link = self._links.get(name)
            if link is None:
                wanted = self._ports.get(name) or free_port()
                link = NetLink(name, ("127.0.0.1", upstream_port), listen_port=wanted).start()
                link.set_shape(self.default_shape(source, target))
                self._links[name] = link
                if self._ports.get(name) != link.port:
                    self._ports[name] = link.port
                    self._save()
            elif link.upstream[1] != upstream_port:
                # the target was restarted on another port: new connections go there
                link.set_upstream(("127.0.0.1", upstream_port), reset=False)
            return link.port

    def restore(self, ports: dict[str, int]) -> None:
        """Listen again on every saved link whose target's port is known (``ports``:
        member -> port), as before a restart."""
        for name in list(self._ports):
            source, _, target = name.partition(">")
            if target in ports:
                self.port(source, target, ports[target])

    def get(self, name: str) -> NetLink:
        with self._lock:
            link = self._links.get(name)
            known = sorted(self._links)
        if link is None:
            raise PlatformError(f"no link {name!r} (links: {', '.join(known) or 'none yet'})")
        return link

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._links)

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            links = sorted(self._links.items())
        return [
            {
                "name": name, "port": link.port, "upstream": link.upstream[1],
                "shape": asdict(link.shape), "open": link.open_connections,
                "connections": link.connections_total, "resets": link.resets_total,
                "default": link.shape == self.default_shape(*name.split(">", 1)),
            }
            for name, link in links
        ]  # fmt: skip

    def stop(self) -> None:
        with self._lock:
            links, self._links = list(self._links.values()), {}
        for link in links:
            link.stop()

    def _touching(self, nodes: set[str]) -> list[tuple[str, NetLink]]:
        with self._lock:
            return [
                (name, link) for name, link in sorted(self._links.items())
                if set(name.split(">", 1)) & nodes
            ]  # fmt: skip

    def isolate(self, nodes: set[str]) -> list[str]:
        """Cut every link with an end on ``nodes`` (a region losing its network, its hosts
        with it): what was in flight on them is lost, and their open connections are reset.

        Reset, not held: a held connection is answered by this proxy's own TCP stack, so a
        client that guards itself with TCP timeouts (keepalives, ``tcp_user_timeout``)
        would never see them fire, as it would against a region that is gone -- it would
        hang where the real one gives up. The reset is what such a client ends with; a
        client with no guard at all hangs longer in reality than here (the sandbox's ERP
        has none: said in the issue-39 note). Shapes are kept for ``rejoin``."""
        cut = []
        for name, link in self._touching(nodes):
            if not link.shape.cut:
                self._isolated.setdefault(name, link.shape)
                link.set_shape(replace(link.shape, cut=True))
                cut.append(name)
            link.reset_connections()
        return cut

    def rejoin(self, nodes: set[str]) -> list[str]:
        """Undo ``isolate``: each link back to the shape it had, or -- when that was lost
        with a restarted daemon -- to the shape a new link starts with."""
        healed = []
        for name, link in self._touching(nodes):
            kept = self._isolated.pop(name, None)
            if kept is None and not link.shape.cut:
                continue
            source, _, target = name.partition(">")
            link.set_shape(kept or self.default_shape(source, target))
            healed.append(name)
        return healed

    # -- operations for the control API ---------------------------------------------------
    def operations(self) -> dict[str, Any]:
        def shape(params: dict[str, Any]) -> dict[str, Any]:
            link = self.get(str(params["name"]))
            fields = {k: params[k] for k in ("latency_ms", "jitter_ms", "loss_percent",
                                             "bandwidth_kbps", "cut") if k in params}  # fmt: skip
            link.set_shape(LinkShape(**fields))
            return asdict(link.shape)

        def reset(params: dict[str, Any]) -> int:
            return self.get(str(params["name"])).reset_connections()

        return {
            "links/status": lambda _p: self.status(),
            "links/shape": shape,
            "links/reset": reset,
            "links/isolate": lambda p: self.isolate({str(n) for n in p["nodes"]}),
            "links/rejoin": lambda p: self.rejoin({str(n) for n in p["nodes"]}),
        }
