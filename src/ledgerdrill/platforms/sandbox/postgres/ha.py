"""``HaController``: automatic failover for the sandbox, modelled on a managed
PostgreSQL's zone-redundant HA (Azure Database for PostgreSQL flexible server).

What it does, and what a real service does the same way:

* It probes the primary every ``poll_interval_s`` (connect + one query, hard deadline
  ``probe_timeout_s``). When the primary has not answered for ``detection_window_s``
  it **fails over**: it fences the old primary (SIGKILL of whatever is left of it: a
  frozen primary must not wake up as a second primary), promotes the synchronous
  standby, and -- with no standby left -- runs the new primary with
  ``synchronous_standby_names = ''`` (degraded HA: commits do not hang, RPO is no longer
  0 until a standby is back). Then it points the DR replica at the new primary; if the
  replica cannot follow (it had received WAL the new primary never had), it is rebuilt.
* When the **standby** is lost instead (gone from ``pg_stat_replication`` or silent for
  the detection window), it degrades synchronous replication the same way, so commits
  stop waiting forever; when the standby streams again, it restores ``FIRST 1 (...)``.
* The old primary comes back as a standby with ``rejoin`` (``pg_rewind``, or a rebuild):
  the platform calls it when the node is back, or the controller does it by itself when
  given ``node_available`` (Azure rebuilds the standby automatically after a failover).
* A **regional failover** (``regional_failover``, or ``PgCluster.promote_dr`` called
  directly) fences the primary region's members; while the cluster says
  ``regional_failover_active`` the controller stands aside completely -- no failover to
  the zone partner, no automatic rejoin of a node that comes back, no change to
  synchronous replication -- so a returning node can never become a second primary.
  ``fail_back`` (or ``adopt_restored``, after a point-in-time restore) ends it.

Every decision is reported through ``on_event(kind, member, attributes)``:

=========================== =============== ===============================================
kind                        member          attributes
=========================== =============== ===============================================
ha-started / ha-stopped     primary         detection_window_s, poll_interval_s
primary-unreachable         old primary     error, last_answer_s_ago
primary-reachable           primary         unreachable_s (a blip shorter than the window)
failover-started            old primary     standby, unanswered_s
primary-fenced              old primary     processes_killed (bool)
standby-promoted            new primary     promotion_s, timeline
sync-replication-degraded   primary         standby, reason, waiting_commits
sync-replication-restored   primary         standby
replicas-repointed          new primary     replicas
replica-rebuilt             replica         how, reason
failover-completed          new primary     old_primary, detection_s, failover_s, timeline
failover-failed             old primary     error
failover-impossible         old primary     reason (reported once per outage)
sync-standby-unreachable    standby         reason
standby-rejoined            member          how (following | restarted | repointed |
                                            rewound | rebuilt), took_s,
                                            rewind_error (when rebuilt)
rejoin-failed               member          error
switchover-completed        new primary     old_primary, took_s
ha-suspended                primary         reason (regional failover in progress)
ha-resumed                  primary         (none)
region-failed-over          dr primary      promotion_took_s, timeline
failed-back                 primary         took_s, timeline
restored-server-adopted     primary         restored, took_s, timeline
member-stopped              member          action (a stopped member whose node is back
                                            is rejoined: standby, DR replica)
primary-restarted           primary         reason (no standby to fail over to; its
                                            node is back: restarted in place)
restart-failed              primary         error
controller-error            primary         error (the loop goes on)
=========================== =============== ===============================================

Events are in the order of cause and effect, which is what a drill's timeline and
the tests read:

* A decision is reported *before* the controller acts on it (``failover-started``,
  ``sync-replication-degraded``, ``sync-replication-restored``): a commit released by
  the degradation, say, never comes back before the event that explains it. An
  action that then fails is followed by ``failover-failed`` or ``controller-error``.
* The poll and every planned operation (``rejoin``, ``switchover``, the regional ones)
  take turns under one lock, and a planned operation reports its outcome and what
  follows from it (``region-failed-over`` then ``ha-suspended``; ``failed-back`` then
  ``ha-resumed``) before the poll may run again. Time spent waiting for a planned
  operation never counts as the primary's silence.

Times come from an injectable monotonic ``clock``; ``tick()`` runs one poll so the
decision logic can be driven step by step. The drills use the real thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.sandbox.postgres.cluster import PgCluster
from ledgerdrill.platforms.sandbox.postgres.probe import Health, ProbeFailed, Prober
from ledgerdrill.platforms.sandbox.postgres.server import PgServer, application_name

EventSink = Callable[[str, str, dict[str, object]], None]
ProbeFn = Callable[[PgServer], Health]


class HaController:
    """Watches the cluster's primary from a thread and fails over, degrades and
    restores synchronous replication as described in the module docstring.

    ``on_event`` is called from the controller's thread (and from the caller's, for
    ``rejoin``/``switchover``); it must be quick and thread-safe. Planned operations
    go through ``switchover``/``rejoin`` here, so the controller pauses its judgement
    while they run instead of mistaking a planned stop for an outage."""

    def __init__(
        self,
        cluster: PgCluster,
        on_event: EventSink,
        *,
        detection_window_s: float = 2.0,
        poll_interval_s: float = 0.15,
        probe_timeout_s: float = 1.0,
        fence_old_primary: bool = True,
        node_available: Callable[[str], bool] | None = None,
        follow_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        probe: ProbeFn | None = None,
    ) -> None:
        self.cluster = cluster
        self.on_event = on_event
        self.detection_window_s = detection_window_s
        self.poll_interval_s = poll_interval_s
        self.fence_old_primary = fence_old_primary
        self.node_available = node_available
        self.follow_timeout_s = follow_timeout_s
        self.clock = clock
        self._prober: Prober | None = None
        self._probe_timeout_s = probe_timeout_s
        self._probe = probe or self._real_probe
        self._stop = threading.Event()
        self._paused = threading.Event()  # a planned operation is in progress
        # one decision at a time: the poll and the planned operations take turns, so
        # their events can never interleave out of cause-and-effect order
        self._decide = threading.RLock()
        self._thread: threading.Thread | None = None
        self._watched = cluster.primary_name
        self._last_answer = clock()
        self._unreachable_since: float | None = None
        self._impossible_reported = False
        self._standby_lost_since: float | None = None
        self._standby_ok_since: float | None = None
        self._to_rejoin: dict[str, float] = {}  # member -> earliest next attempt
        self._to_follow: dict[str, float] = {}  # repointed replica -> deadline
        self._suspended = False  # standing aside during a regional failover

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._reset(self.cluster.primary_name)
        self._thread = threading.Thread(target=self._run, name="pg-ha-controller", daemon=True)
        self._thread.start()
        self._emit(
            "ha-started",
            self._watched,
            detection_window_s=self.detection_window_s,
            poll_interval_s=self.poll_interval_s,
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling and join the thread (an action in progress finishes first)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout_s)
        if thread.is_alive():
            raise PlatformError(f"the HA controller did not stop within {timeout_s}s")
        self._emit("ha-stopped", self.cluster.primary_name)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> HaController:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # the controller must outlive any one failure
                    self._emit("controller-error", self._watched, error=str(exc))
                self._stop.wait(self.poll_interval_s)
        finally:
            if self._prober is not None:
                self._prober.close()
                self._prober = None

    def _real_probe(self, server: PgServer) -> Health:
        if self._prober is None:
            self._prober = Prober(self._probe_timeout_s)
        return self._prober.check(server.conninfo())

    def _emit(self, kind: str, name: str, **attributes: object) -> None:
        with contextlib.suppress(Exception):  # a broken sink must not stop the HA
            self.on_event(kind, name, dict(attributes))

    def _reset(self, primary: str) -> None:
        self._watched = primary
        self._last_answer = self.clock()
        self._unreachable_since = None
        self._impossible_reported = False
        self._standby_lost_since = None
        self._standby_ok_since = None

    # -- one poll ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Probe the primary once and act on what is seen."""
        with self._decide:
            self._tick()

    def _tick(self) -> None:
        if self._paused.is_set():
            self._last_answer = self.clock()  # no judging the primary during maintenance
            return
        if self._stand_aside():
            return
        if self.cluster.primary_name != self._watched:  # switched by someone else
            self._reset(self.cluster.primary_name)
        primary = self.cluster.primary
        try:
            health = self._probe(primary)
            if health.in_recovery:
                raise ProbeFailed("the server is in recovery (not a primary)")
        except ProbeFailed as exc:
            self._primary_silent(primary, str(exc))
            return
        now = self.clock()
        if self._unreachable_since is not None:
            self._emit("primary-reachable", primary.name, unreachable_s=now - self._last_answer)
        self._last_answer = now
        self._unreachable_since = None
        self._impossible_reported = False
        self._watch_sync_standby(primary, health, now)
        self._watch_followers(now)
        self._heal_stopped(primary)
        self._auto_rejoin(now)

    def _stand_aside(self) -> bool:
        """True while a regional failover is in progress: the primary region's members
        are fenced and only ``fail_back``/``adopt_restored`` may bring them back. Work
        queued from before (a rejoin, a replica to watch) is dropped: it would act on
        fenced members."""
        active = self.cluster.regional_failover_active
        if active and not self._suspended:
            self._suspended = True
            self._to_rejoin.clear()
            self._to_follow.clear()
            self._emit(
                "ha-suspended", self.cluster.primary_name, reason="regional failover in progress"
            )
        elif not active and self._suspended:
            self._suspended = False
            self._reset(self.cluster.primary_name)
            self._emit("ha-resumed", self.cluster.primary_name)
        if active:
            self._reset(self.cluster.primary_name)
        return active

    def _primary_silent(self, primary: PgServer, error: str) -> None:
        now = self.clock()
        if self._unreachable_since is None:
            self._unreachable_since = now
            self._emit(
                "primary-unreachable",
                primary.name,
                error=error,
                last_answer_s_ago=now - self._last_answer,
            )
        if now - self._last_answer >= self.detection_window_s:
            self._fail_over(primary, now)

    # -- failover -----------------------------------------------------------------------
    def _fail_over(self, old: PgServer, detected_at: float) -> None:
        with self.cluster.lock:  # a switchover or rejoin in progress finishes first
            if (
                self.cluster.primary_name != old.name
                or self._paused.is_set()
                or self.cluster.regional_failover_active
            ):
                return  # someone else already acted
            standby = self._failover_target(old)
            if standby is None:
                self._restart_in_place(old, "no standby to fail over to")
                return
            unanswered = detected_at - self._last_answer
            self._emit("failover-started", old.name, standby=standby.name, unanswered_s=unanswered)
            try:
                if self.fence_old_primary:
                    was_alive = old.alive()
                    old.crash()
                    self._emit("primary-fenced", old.name, processes_killed=was_alive)
                took = self.cluster.promote(standby.name)
                timeline = standby.timeline_id()
                self._emit("standby-promoted", standby.name, promotion_s=took, timeline=timeline)
                self._emit(
                    "sync-replication-degraded",
                    standby.name,
                    standby=old.name,
                    reason="failover: no standby left",
                    waiting_commits=0,
                )
                moved = self.cluster.repoint_replicas(standby.name)
                self._emit("replicas-repointed", standby.name, replicas=moved)
            except PlatformError as exc:
                self._emit("failover-failed", old.name, error=str(exc))
                return
            now = self.clock()
            for name in moved:
                self._to_follow[name] = now + self.follow_timeout_s
            self._to_rejoin[old.name] = now
            self._emit(
                "failover-completed",
                standby.name,
                old_primary=old.name,
                detection_s=unanswered,
                failover_s=now - detected_at,
                timeline=timeline,
            )
            self._reset(standby.name)

    def _failover_target(self, old: PgServer) -> PgServer | None:
        """The HA partner when it is a live standby; else report (once) and None."""
        partner = self.cluster.partner_of(old.name)
        if partner is None:
            reason = "no standby in another zone"
        else:
            try:
                in_recovery = self._probe(self.cluster.server(partner)).in_recovery
                reason = "" if in_recovery else f"{partner} is not a standby"
            except ProbeFailed as exc:
                reason = f"standby {partner} does not answer either: {exc}"
        if not reason and partner is not None:
            return self.cluster.server(partner)
        if not self._impossible_reported:
            self._emit("failover-impossible", old.name, reason=reason)
            self._impossible_reported = True
        return None

    # -- synchronous standby ------------------------------------------------------------------
    def _watch_sync_standby(self, primary: PgServer, health: Health, now: float) -> None:
        partner = self.cluster.partner_of(primary.name)
        if partner is None:
            return
        app = application_name(partner)
        seen = health.standbys.get(app)
        reason = ""
        if seen is None:
            reason = "not connected"
        elif seen.state != "streaming":
            reason = f"state {seen.state}"
        elif seen.reply_age_s is not None and seen.reply_age_s > self.detection_window_s:
            reason = f"silent for {seen.reply_age_s:.1f}s"
        configured = f"({app})" in health.synchronous_standby_names
        if not reason:
            self._standby_lost_since = None
            if self._standby_ok_since is None:
                self._standby_ok_since = now
            # hysteresis, and the standby's own word that it follows this timeline: a
            # diverged standby flickers in pg_stat_replication as it retries
            steady = now - self._standby_ok_since >= self.detection_window_s
            if not configured and steady and self.cluster.follows_primary(partner):
                self._to_rejoin.pop(partner, None)  # evidently back
                self._emit("sync-replication-restored", primary.name, standby=partner)
                with self.cluster.lock:
                    primary.set_synchronous_standby(partner)
            return
        self._standby_ok_since = None
        if self._standby_lost_since is None:
            silent_for = seen.reply_age_s if seen is not None and seen.reply_age_s else 0.0
            self._standby_lost_since = now - silent_for  # silent since its last reply
            if configured:
                self._emit("sync-standby-unreachable", partner, reason=reason)
        if configured and now - self._standby_lost_since >= self.detection_window_s:
            # reported first: the change releases waiting commits at once
            self._emit(
                "sync-replication-degraded",
                primary.name,
                standby=partner,
                reason=reason,
                waiting_commits=health.waiting_commits,
            )
            with self.cluster.lock:
                primary.set_synchronous_standby(None)

    def _watch_followers(self, now: float) -> None:
        """A repointed replica that does not follow by its deadline had diverged (it
        received WAL the promoted standby never had): rewind or rebuild it, as a
        managed service re-seeds a geo-replica."""
        for name, deadline in list(self._to_follow.items()):
            if self.cluster.follows_primary(name):
                del self._to_follow[name]
            elif now >= deadline:
                del self._to_follow[name]
                try:
                    # it already had its chance to follow: straight to rewind
                    how = self.cluster.rejoin(name, restore_sync=False, follow_timeout_s=0.5)
                    self._emit("replica-rebuilt", name, how=how, reason="did not follow")
                except PlatformError as exc:
                    self._emit("rejoin-failed", name, error=str(exc))

    def _heal_stopped(self, primary: PgServer) -> None:
        """Any stopped member whose node is available again is brought back -- not only
        a failed-over former primary: the synchronous standby of a zone that was lost,
        the DR replica. A managed service rebuilds its standby the same way; without
        this the cluster would stay without a synchronous standby (RPO 0 silently gone)
        after the zone came back."""
        if self.node_available is None:
            return
        for server in self.cluster.members:
            if server is primary or server.name in self._to_rejoin:
                continue
            if server.state() == "stopped" and self.node_available(server.name):
                self._to_rejoin[server.name] = self.clock()
                self._emit("member-stopped", server.name, action="rejoin scheduled")

    def _restart_in_place(self, old: PgServer, reason: str) -> bool:
        """No standby to fail over to (both halves of the pair were lost, as in a
        region outage) but the primary's node is back: start the primary where it was
        (crash recovery), as a managed service restarts a server whose host returned.
        Its partner rejoins afterwards (``_heal_stopped``)."""
        if self.node_available is None or not self.node_available(old.name):
            return False
        if old.state() != "stopped" or (old.data_dir / "standby.signal").exists():
            return False
        try:
            old.start()
        except PlatformError as exc:
            self._emit("restart-failed", old.name, error=str(exc))
            return False
        self._emit("primary-restarted", old.name, reason=reason)
        self._reset(old.name)
        return True

    def _auto_rejoin(self, now: float) -> None:
        if self.node_available is None:
            return
        for name, not_before in list(self._to_rejoin.items()):
            ready = now >= not_before and self.node_available(name)
            if ready and not self._do_rejoin(name):
                self._to_rejoin[name] = now + 5.0  # back off, then try again

    # -- what the platform calls ------------------------------------------------------------
    def rejoin(self, member: str) -> str:
        """Bring ``member`` (a former primary, a lost standby) back as a standby; the HA
        partner becomes the synchronous standby again. Idempotent; raises on failure."""
        return self._rejoin_or_raise(member)

    def _do_rejoin(self, member: str) -> bool:
        try:
            self._rejoin_or_raise(member)
        except PlatformError:
            return False
        return True

    def _rejoin_or_raise(self, member: str) -> str:
        started = self.clock()
        with self._planned_operation():
            try:
                with self.cluster.lock:
                    sync_before = self.cluster.primary.synchronous_standby_names()
                    how = self.cluster.rejoin(member, restore_sync=True)
                    sync_after = self.cluster.primary.synchronous_standby_names()
            except PlatformError as exc:
                self._emit("rejoin-failed", member, error=str(exc))
                raise
            self._to_rejoin.pop(member, None)
            details: dict[str, object] = {"how": how, "took_s": self.clock() - started}
            if how == "rebuilt":
                details["rewind_error"] = self.cluster.last_rewind_error
            self._emit("standby-rejoined", member, **details)
            if sync_after != sync_before and sync_after:
                self._emit("sync-replication-restored", self.cluster.primary_name, standby=member)
        return how

    def switchover(self, to: str | None = None) -> str:
        """A planned switchover, with the controller's knowledge kept in step."""
        started = self.clock()
        with self._planned_operation():
            with self.cluster.lock:
                old = self.cluster.primary_name
                new = self.cluster.switchover(to)
                self._reset(new)
            self._emit("switchover-completed", new, old_primary=old, took_s=self.clock() - started)
        return new

    @contextlib.contextmanager
    def _planned_operation(self) -> Iterator[None]:
        """Hold the poll off while a planned operation runs and reports (the poll waits
        for its turn; an operation called from the poll itself, an automatic rejoin,
        re-enters). The wait is not the primary's silence: the clock of the last answer
        restarts when the operation ends."""
        with self._decide:
            self._paused.set()
            try:
                yield
            finally:
                self._paused.clear()
                self._last_answer = self.clock()

    # -- planned region-level operations --------------------------------------------------------
    def _planned(self, action: Callable[[], object], report: Callable[[], None]) -> None:
        """Run ``action`` paused and under the cluster lock, then start afresh: queued
        rejoins and replicas to watch belonged to the topology before it. ``report``
        emits the outcome, and the controller takes its stance on the new topology
        (suspended or resumed) before the poll runs again."""
        with self._planned_operation():
            with self.cluster.lock:
                action()
                self._to_rejoin.clear()
                self._to_follow.clear()
                self._reset(self.cluster.primary_name)
            report()
            self._stand_aside()

    def regional_failover(self) -> str:
        """The primary region is lost: promote the DR replica and fence the region's
        members (``PgCluster.promote_dr``). The controller stands aside until
        ``fail_back``. Returns the new primary."""
        started = self.clock()

        def report() -> None:
            primary = self.cluster.primary
            self._emit(
                "region-failed-over",
                primary.name,
                promotion_took_s=self.clock() - started,
                timeline=primary.timeline_id(),
            )

        self._planned(self.cluster.promote_dr, report)
        return self.cluster.primary_name

    def fail_back(self, timeout_s: float = 120.0) -> str:
        """Back to the primary region once its nodes are available again
        (``PgCluster.fail_back``): the original shape, the controller resumes.
        Returns the primary."""
        started = self.clock()

        def report() -> None:
            primary = self.cluster.primary
            self._emit(
                "failed-back",
                primary.name,
                took_s=self.clock() - started,
                timeline=primary.timeline_id(),
            )

        self._planned(lambda: self.cluster.fail_back(timeout_s), report)
        return self.cluster.primary_name

    def adopt_restored(self, name: str, timeout_s: float = 120.0) -> str:
        """Make the restored server ``name`` the HA cluster's data again
        (``PgCluster.adopt_restored``) without the controller mistaking the rebuild for
        an outage. Returns the primary."""
        started = self.clock()

        def report() -> None:
            primary = self.cluster.primary
            self._emit(
                "restored-server-adopted",
                primary.name,
                restored=name,
                took_s=self.clock() - started,
                timeline=primary.timeline_id(),
            )

        self._planned(lambda: self.cluster.adopt_restored(name, timeout_s), report)
        return self.cluster.primary_name
