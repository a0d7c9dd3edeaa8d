"""The business calendar: month-end close windows, explicit date ranges, holidays, time
zones and daylight saving. Fixed dates and hypothesis-generated ones; no real clock."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerdrill.errors import ConfigError, SafetyViolation
from ledgerdrill.faults import NodeCrash
from ledgerdrill.platforms.fake import FakePlatform
from ledgerdrill.safety import SafetyGuard
from ledgerdrill.safety.calendar import Calendar, require_windows
from ledgerdrill.targets import WEEKDAYS, BusinessCalendar, MonthEndClose, load_target
from ledgerdrill.timeline import FakeClock

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "Pacific/Chatham", "America/Santiago", "Asia/Tehran"]  # fmt: skip


def month_end(last: int, first: int, tz: str = "Europe/Berlin", **extra: object) -> Calendar:
    return Calendar(
        BusinessCalendar.model_validate({
            "timezone": tz,
            "blackouts": [{"name": "close", "month_end": {
                "last_business_days": last, "first_business_days": first}}],
            **extra,
        })
    )  # fmt: skip


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- fixed examples: what an accountant would check on a wall calendar ----------------
def test_month_end_close_of_november_2026_in_berlin() -> None:
    # Nov 2026: Fri 27, Mon 30 are the last two business days; Dec 1 (Tue) the first
    cal = month_end(2, 1)
    assert not cal.active(utc(2026, 11, 26, 22, 59))  # Thu 23:59 Berlin
    [window] = cal.active(utc(2026, 11, 26, 23, 0))  # Fri 00:00 Berlin
    assert window.name == "close"
    assert window.ends_at == utc(2026, 12, 1, 23, 0)  # Wed 2 Dec 00:00 Berlin
    assert cal.active(utc(2026, 11, 28, 12))  # the weekend inside the close
    assert not cal.active(utc(2026, 12, 1, 23, 0))
    assert "until 2026-12-02 00:00 Europe/Berlin" in window.describe()


def test_leap_february_and_a_holiday() -> None:
    # Feb 2028 ends on Tue 29 (leap year); with Mon 28 a holiday the last two business
    # days are Fri 25 and Tue 29, and the close covers the weekend and the holiday
    cal = month_end(2, 0, tz="UTC", holidays=["2028-02-28"])
    assert not cal.active(utc(2028, 2, 24, 23, 59))
    [window] = cal.active(utc(2028, 2, 25))
    assert window.ends_at == utc(2028, 3, 1)
    assert cal.active(utc(2028, 2, 29, 23, 59, 59))
    assert not cal.active(utc(2028, 3, 1))
    # 2027 is not a leap year: Feb ends on Sun 28, last business days Thu 25, Fri 26
    assert month_end(2, 0, tz="UTC").month_end_span(2027, 2, MonthEndClose(
        last_business_days=2)) == (date(2027, 2, 25), date(2027, 2, 26))  # fmt: skip


def test_year_end_close_runs_into_january() -> None:
    cal = month_end(1, 2, tz="UTC", holidays=["2027-01-01"])
    # Thu 31 Dec 2026 is the last business day; Jan 1 is a holiday, Jan 2-3 a weekend,
    # so the first two business days are Mon 4 and Tue 5
    [window] = cal.active(utc(2026, 12, 31, 8))
    assert window.ends_at == utc(2027, 1, 6)
    assert cal.active(utc(2027, 1, 2))


def test_close_ends_on_the_day_after_in_local_time_across_dst() -> None:
    # New York, March 2027: DST starts Sun 14 Mar. A close over the first 3 business
    # days of March ends at local midnight starting Thu 4 Mar: 05:00Z (EST, UTC-5)
    cal = month_end(0, 3, tz="America/New_York")
    [window] = cal.active(utc(2027, 3, 1, 12))
    assert window.ends_at == utc(2027, 3, 4, 5)
    # October 2026 close in Berlin: DST ends Sun 25 Oct; last business day is Fri 30,
    # first of November Mon 2: ends at 00:00 CET on Tue 3 Nov = 23:00Z on Mon 2
    [window] = month_end(1, 1).active(utc(2026, 10, 30, 12))
    assert window.ends_at == utc(2026, 11, 2, 23)


def test_explicit_dates_are_inclusive_whole_local_days() -> None:
    cal = Calendar(BusinessCalendar.model_validate({
        "timezone": "Asia/Kolkata",
        "blackouts": [{"name": "audit", "from": "2026-12-20", "to": "2027-01-10",
                       "reason": "year-end audit"}],
    }))  # fmt: skip
    assert not cal.active(utc(2026, 12, 19, 18, 29))  # 23:59 in India (UTC+5:30)
    [window] = cal.active(utc(2026, 12, 19, 18, 30))
    assert window.ends_at == utc(2027, 1, 10, 18, 30)
    assert "(year-end audit)" in window.describe()


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="aware"):
        month_end(1, 1).active(datetime(2026, 11, 30, 12))


# -- properties ---------------------------------------------------------------------
months = st.tuples(st.integers(1990, 2100), st.integers(1, 12))
rules = st.tuples(st.integers(0, 15), st.integers(0, 15)).filter(lambda r: sum(r) > 0)
weekends = st.sets(st.sampled_from(WEEKDAYS), max_size=3)
holiday_sets = st.sets(st.dates(date(1990, 1, 1), date(2101, 1, 31)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(month=months, rule=rules, weekend=weekends, holidays=holiday_sets)
def test_close_covers_exactly_the_business_days_asked_for(
    month: tuple[int, int], rule: tuple[int, int], weekend: set[str], holidays: set[date]
) -> None:
    last, first = rule
    cal = month_end(last, first, tz="UTC", weekend=sorted(weekend), holidays=sorted(holidays))
    span = cal.month_end_span(*month, MonthEndClose(
        last_business_days=last, first_business_days=first))  # fmt: skip
    year, mon = month
    nxt = (year + 1, 1) if mon == 12 else (year, mon + 1)
    this_month, next_month = cal.business_days(year, mon), cal.business_days(*nxt)
    chosen_this = this_month[-last:] if last else []
    chosen_next = next_month[:first]
    if not chosen_this and not chosen_next:  # holidays ate every business day
        assert span is None
        return
    assert span is not None
    start, end = span
    days = [start + timedelta(n) for n in range((end - start).days + 1)]
    business = [d for d in days if cal.is_business_day(d)]
    # it begins and ends on a business day, and holds the asked-for number of them
    assert cal.is_business_day(start) and cal.is_business_day(end)
    in_this = [d for d in business if (d.year, d.month) == (year, mon)]
    in_next = [d for d in business if (d.year, d.month) == nxt]
    assert in_this == chosen_this
    assert in_next == chosen_next
    assert len(business) == len(in_this) + len(in_next)


@settings(max_examples=400, deadline=None)
@given(
    at=st.datetimes(datetime(1995, 1, 1), datetime(2095, 1, 1), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES), rule=rules, weekend=weekends,
)  # fmt: skip
def test_an_active_window_holds_until_its_end_and_not_after(
    at: datetime, zone: str, rule: tuple[int, int], weekend: set[str]
) -> None:
    cal = month_end(*rule, tz=zone, weekend=sorted(weekend))
    local_day = at.astimezone(ZoneInfo(zone)).date()
    found = cal.active(at)
    assert bool(found) == cal.covers(cal.settings.blackouts[0], local_day)
    for window in found:
        assert window.ends_at > at
        # still in just before the end, out at the end: an end that is really an end
        assert cal.active(window.ends_at - timedelta(microseconds=1))
        # unless one close runs into the next (too many close days): then it says so
        assert bool(cal.active(window.ends_at)) == window.open_ended
        # the end is the first instant of a local day (midnight, or where a DST gap
        # swallows midnight, the first instant that day has)
        local_end = window.ends_at.astimezone(ZoneInfo(zone))
        before = (window.ends_at - timedelta(microseconds=1)).astimezone(ZoneInfo(zone))
        assert local_end.date() == before.date() + timedelta(days=1)


@settings(max_examples=200, deadline=None)
@given(
    year=st.integers(1990, 2100), month=st.integers(1, 12),
    weekend=weekends, holidays=holiday_sets,
)  # fmt: skip
def test_business_days_are_the_month_minus_weekends_and_holidays(
    year: int, month: int, weekend: set[str], holidays: set[date]
) -> None:
    cal = month_end(1, 0, tz="UTC", weekend=sorted(weekend), holidays=sorted(holidays))
    every = [date(year, month, d) for d in range(1, stdlib_calendar.monthrange(year, month)[1] + 1)]
    expected = [d for d in every
                if WEEKDAYS[d.weekday()] not in weekend and d not in holidays]  # fmt: skip
    assert cal.business_days(year, month) == expected
    if month == 2:
        assert len(every) == (29 if stdlib_calendar.isleap(year) else 28)


# -- the target file: bad input is one clear line ------------------------------------
BASE = """
name: fake-lab
platform: {kind: fake, state_file: state.json}
tiers: {finance-core: {rto: 5m, rpo: 0s}}
safety:
  allow: {nodes: ["node-*"]}
  calendar:
"""


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ("    blackouts: []", "safety.calendar.timezone: "),
        ("    timezone: Europe/Berln", "unknown time zone 'Europe/Berln'"),
        ("    timezone: /etc/passwd", "unknown time zone '/etc/passwd'"),
        ("    timezone: UTC\n    blackouts: [{name: x}]", "exactly one of month_end or from/to"),
        ("    timezone: UTC\n    blackouts: [{name: x, from: 2026-12-20}]", "give both from and to"),
        ("    timezone: UTC\n    blackouts: [{name: x, from: 2026-12-20, to: 2026-12-01}]",
         "is before from"),
        ("    timezone: UTC\n    blackouts: [{name: x, month_end: {}}]",
         "give last_business_days and/or first_business_days"),
        ("    timezone: UTC\n    blackouts: [{name: x, month_end: {last_business_days: 99}}]",
         "last_business_days"),
        ("    timezone: UTC\n    weekend: [mon, tue, wed, thu, fri, sat, sun]", "weekend"),
        ("    timezone: UTC\n    weekend: [saturday]", "weekend"),
        ("    timezone: UTC\n    blackouts: [{name: a, from: 2026-01-01, to: 2026-01-02},"
         " {name: a, from: 2026-02-01, to: 2026-02-02}]", "repeated: ['a']"),
        ("    timezone: UTC\n    blackouts: [{name: a, from: 2026-01-01T10:00:00, to: 2026-01-02}]",
         "from"),
        ("    timezone: UTC\n    blakouts: []", "blakouts"),
    ],
)  # fmt: skip
def test_bad_calendars_are_one_clear_config_error(
    tmp_path: Path, calendar: str, message: str
) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(BASE + calendar + "\n")
    with pytest.raises(ConfigError) as caught:
        load_target(path)
    text = str(caught.value)
    assert text.startswith(str(path)) and message in text, text
    assert "Traceback" not in text


def test_overriding_an_unknown_window_is_a_config_error() -> None:
    settings_ = BusinessCalendar.model_validate(
        {
            "timezone": "UTC",
            "blackouts": [{"name": "close", "month_end": {"last_business_days": 2}}],
        }
    )
    require_windows(settings_, ["close"], "t.yaml")
    with pytest.raises(
        ConfigError, match=r"t.yaml: --override-blackout=clsoe: no such window.*close"
    ):
        require_windows(settings_, ["clsoe"], "t.yaml")
    with pytest.raises(ConfigError, match="defined: none"):
        require_windows(None, ["close"], "t.yaml")


# -- the guard: refuses inside a window, names it and its end; an override is recorded
def guard_at(tmp_path: Path, when: datetime, overrides: tuple[str, ...] = ()) -> SafetyGuard:
    path = tmp_path / "target.yaml"
    path.write_text(BASE + "    timezone: Europe/Berlin\n    blackouts:\n"
                    "      - {name: month-end-close, reason: financial close,"
                    " month_end: {last_business_days: 2, first_business_days: 1}}\n")  # fmt: skip
    target = load_target(path)
    platform = FakePlatform("fake-lab", tmp_path / "state.json", target.platform.nodes)  # type: ignore[union-attr]
    return SafetyGuard(target, platform, override_blackout=overrides, clock=FakeClock(when))


def test_guard_refuses_inside_the_close_and_says_until_when(tmp_path: Path) -> None:
    guard = guard_at(tmp_path, utc(2026, 11, 30, 9))
    fault = NodeCrash(guard.platform, "node-b")
    [problem] = guard.problems(fault)
    assert "blackout window month-end-close (financial close)" in problem
    assert "until 2026-12-02 00:00 Europe/Berlin" in problem
    assert "--override-blackout=month-end-close" in problem
    with pytest.raises(SafetyViolation, match="month-end-close"):
        guard.check_calendar()


def test_guard_allows_outside_and_with_the_override(tmp_path: Path) -> None:
    outside = guard_at(tmp_path, utc(2026, 11, 15, 9))
    assert outside.problems(NodeCrash(outside.platform, "node-b")) == []
    assert outside.check_calendar() == []
    overridden = guard_at(tmp_path, utc(2026, 11, 30, 9), ("month-end-close",))
    assert overridden.problems(NodeCrash(overridden.platform, "node-b")) == []
    assert [w.name for w in overridden.check_calendar()] == ["month-end-close"]


def test_a_close_that_never_ends_says_so() -> None:
    # 15 + 15 business days of close with a one-day weekend: no business day is ever
    # outside the close; the guard must not promise an end it cannot see
    cal = month_end(15, 15, tz="UTC", weekend=["sun"])
    [window] = cal.active(utc(2026, 6, 10))
    assert window.open_ended
    assert "at least until" in window.describe() and "check safety.calendar" in window.describe()
