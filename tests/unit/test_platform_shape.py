"""The platform's shape, the baseline "left as it was found" is judged against
(``ledgerdrill.platforms.shape``): the documented equivalence (roles may move after a
failover; one primary, as many streaming standbys, nothing stopped that ran), read
through the capabilities of a real backend (the fake here), and the bounded wait for a
platform that heals itself."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.platforms.fake import FakePlatform
from ledgerdrill.platforms.shape import (
    HA_PRIMARY,
    MemberShape,
    PlatformShape,
    await_baseline,
    differences,
    read_shape,
)
from ledgerdrill.targets import FakePlatformSettings

HA = (
    MemberShape("db-a", "primary", None),
    MemberShape("db-b", "sync-standby", True),
    MemberShape("db-c", "async-replica", True),
)


def shape(database: tuple[MemberShape, ...] = HA, **changes: object) -> PlatformShape:
    base: dict[str, object] = {
        "nodes": {"erp-a": "running", "erp-b": "running"},
        "regions": {"primary": "up", "dr": "up"},
        "database": database,
        "application_database": HA_PRIMARY,
        "certificate": "ab" * 32,
        "release": "2026.11.0",
        "cache": "alive",
        "facts": {},
    }
    base.update(changes)
    return PlatformShape(**base)  # type: ignore[arg-type]

# -- the shape comparison ----------------------------------------------------------------
roles = st.sampled_from(["primary", "sync-standby", "async-replica", "stopped"])
members = st.lists(
    st.tuples(roles, st.sampled_from([True, False, None])), min_size=1, max_size=4
).map(lambda ms: tuple(MemberShape(f"db-{i}", r, s) for i, (r, s) in enumerate(ms)))
states = st.sampled_from(["running", "stopped", "frozen"])
shapes = st.builds(
    PlatformShape,
    nodes=st.dictionaries(st.sampled_from(["n1", "n2", "n3"]), states),
    database=members,
    application_database=st.sampled_from([HA_PRIMARY, "pitr-1"]),
    release=st.sampled_from(["1", "2"]),
    cache=st.sampled_from(["alive", "down"]),
)


@given(shapes)
def test_a_shape_with_one_primary_matches_itself(found: PlatformShape) -> None:
    problems = differences(found, found)
    assert found.database is not None
    primaries = sum(1 for m in found.database if m.role == "primary")
    # the one rule a shape can break on its own: exactly one writable primary
    assert (problems == []) == (primaries == 1), problems


@given(shapes)
def test_the_json_round_trip_keeps_every_difference(found: PlatformShape) -> None:
    assert differences(found, PlatformShape.from_json(found.to_json())) == differences(found, found)


def test_a_failover_that_swapped_primary_and_standby_is_back_at_baseline() -> None:
    swapped = (
        MemberShape("db-a", "sync-standby", True),
        MemberShape("db-b", "primary", None),
        MemberShape("db-c", "async-replica", True),
    )
    assert differences(shape(), shape(swapped)) == []


def test_a_stopped_synchronous_standby_is_named() -> None:
    # the zone-outage row: PASS while db-a stayed stopped after the drill
    after = (
        MemberShape("db-a", "stopped", None),
        MemberShape("db-b", "primary", None),
        MemberShape("db-c", "async-replica", True),
    )
    found = differences(shape(), shape(after))
    assert "database: 0 streaming synchronous standby(s), 1 before the drill" in found
    assert "database member db-a is stopped (was primary)" in found


def test_a_standby_that_does_not_stream_is_not_a_standby() -> None:
    after = (HA[0], MemberShape("db-b", "sync-standby", False), HA[2])
    found = differences(shape(), shape(after))
    assert any("synchronous standby" in line for line in found)
    assert "database member db-b (sync-standby) is not streaming" in found


def test_no_primary_and_two_primaries_are_both_refused() -> None:
    none = tuple(MemberShape(m.name, "stopped") for m in HA)
    two = (HA[0], MemberShape("db-b", "primary"), HA[2])
    assert any("0 primaries" in line for line in differences(shape(), shape(none)))
    assert any("2 primaries (db-a, db-b)" in line for line in differences(shape(), shape(two)))


def test_the_erp_left_on_a_restored_server_is_named() -> None:
    # the PITR rows: the ERP on a lone restored server, not the HA cluster
    found = differences(shape(), shape(application_database="pitr-20261206t101500"))
    assert found == ["the ERP's database is pitr-20261206t101500 (was the HA primary)"]


def test_an_orphan_fact_and_an_unreadable_part_are_differences() -> None:
    before = shape(facts={"restored servers": "none"})
    after = shape(facts={"restored servers": "pitr-1"}, unreadable={"cache": "timeout"})
    found = differences(before, after)
    assert "restored servers: pitr-1 (was none)" in found
    assert "cache cannot be read: timeout" in found


def test_await_baseline_waits_for_healing_and_gives_up_at_its_bound() -> None:
    now = [0.0]
    reads = iter([shape(release="bad"), shape(release="bad"), shape()])
    check = await_baseline(
        lambda: next(reads), shape(), timeout_s=10, interval_s=1,
        clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
    )  # fmt: skip
    assert check.restored and check.waited_s == 2
    now[0] = 0.0
    stuck = await_baseline(
        lambda: shape(release="bad"), shape(), timeout_s=3, interval_s=1,
        clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
    )  # fmt: skip
    assert not stuck.restored and stuck.waited_s == 3
    assert "the release is bad (was 2026.11.0)" in stuck.text()


# -- approval of runbook steps -----------------------------------------------------------


# -- read through a backend's capabilities (the fake: real reads of its state) ----------


def fake(tmp_path: Path) -> FakePlatform:
    settings = FakePlatformSettings()
    return FakePlatform("lab", tmp_path / "state.json", settings.nodes)


def test_the_shape_is_read_through_the_capabilities_and_names_what_changed(
    tmp_path: Path,
) -> None:
    platform = fake(tmp_path)
    baseline = read_shape(platform)
    assert baseline.unreadable == {}
    assert set(baseline.nodes) == {"node-a", "node-b", "node-c"}
    assert baseline.database is not None and baseline.application_database == HA_PRIMARY
    assert baseline.release and baseline.cache == "alive" and baseline.certificate

    platform.crash_node("node-b")
    platform.kill_cache()
    changed = differences(baseline, read_shape(platform))
    assert "node node-b is stopped (was running)" in changed
    assert "the cache is down (was alive)" in changed

    platform.restore_node("node-b")
    platform.restore_cache()
    platform.switchover()  # roles move: the documented equivalence
    assert differences(baseline, read_shape(platform)) == []

    restored = platform.restore_to_point_in_time(platform.database_time_iso())
    platform.switch_application_database(restored)
    assert differences(baseline, read_shape(platform)) == [
        f"the ERP's database is {restored} (was the HA primary)"
    ]


def test_a_part_that_cannot_be_read_is_a_difference_never_as_before(tmp_path: Path) -> None:
    platform = fake(tmp_path)
    baseline = read_shape(platform)

    def broken() -> bool:
        raise TimeoutError("the cache did not answer within 5s")

    platform.cache_alive = broken  # type: ignore[method-assign]
    found = differences(baseline, read_shape(platform))
    assert found == ["cache cannot be read: TimeoutError: the cache did not answer within 5s"]
