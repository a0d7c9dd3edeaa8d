"""The business calendar: is a blackout window (month-end close, a freeze) in effect now?

A window covers whole *local dates* in the calendar's time zone; an instant is inside
a window when its local date is. Working in dates, not in hours, keeps daylight-saving
changes out of the arithmetic: converting an instant to its local date is always
unambiguous, and a window ends at the first instant of the day after its last date.

Month-end close: the last ``N`` business days of a month and the first ``M`` of the
next, plus every day between them (a weekend or holiday in the middle of the close is
still the close). A business day is neither a weekend day nor a listed holiday.

Time comes from outside (``active(at)``): the guard passes its clock's wall time, so
tests use fixed dates.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ledgerdrill.errors import ConfigError
from ledgerdrill.targets import WEEKDAYS, BlackoutWindow, BusinessCalendar, MonthEndClose

# a chain of overlapping windows longer than this is not a calendar anyone means
MAX_SCAN_DAYS = 800


@dataclass(frozen=True)
class ActiveBlackout:
    """A window in effect at some instant, and when it ends."""

    name: str
    reason: str
    ends_at: datetime  # UTC: the first instant after the window
    timezone: str
    # the window did not end within MAX_SCAN_DAYS: the calendar leaves no gap between
    # one close and the next (too many close days for its business days)
    open_ended: bool = False

    def describe(self) -> str:
        local = self.ends_at.astimezone(ZoneInfo(self.timezone))
        why = f" ({self.reason})" if self.reason else ""
        until = "at least until" if self.open_ended else "until"
        text = (
            f"blackout window {self.name}{why} is in effect {until} "
            f"{local:%Y-%m-%d %H:%M} {self.timezone} ({self.ends_at:%Y-%m-%dT%H:%MZ})"
        )
        if self.open_ended:
            text += " (one close runs into the next: check safety.calendar)"
        return text


class Calendar:
    def __init__(self, settings: BusinessCalendar) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self._weekend = {WEEKDAYS.index(d) for d in settings.weekend}
        self._holidays = set(settings.holidays)
        # month -> its business days; (month, rule) -> its close: a scan over a long
        # window asks for the same months again and again
        self._business: dict[tuple[int, int], list[date]] = {}
        self._spans: dict[tuple[int, int, int, int], tuple[date, date] | None] = {}

    # -- business days -------------------------------------------------------------
    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self._weekend and day not in self._holidays

    def business_days(self, year: int, month: int) -> list[date]:
        if (year, month) not in self._business:
            count = stdlib_calendar.monthrange(year, month)[1]
            days = (date(year, month, n) for n in range(1, count + 1))
            self._business[year, month] = [d for d in days if self.is_business_day(d)]
        return list(self._business[year, month])

    def month_end_span(
        self, year: int, month: int, rule: MonthEndClose
    ) -> tuple[date, date] | None:
        """First and last date of the close that begins in ``month`` (or at the start of
        the next one when ``last_business_days`` is 0); None if it has no business day."""
        key = (year, month, rule.last_business_days, rule.first_business_days)
        if key not in self._spans:
            self._spans[key] = self._month_end_span(year, month, rule)
        return self._spans[key]

    def _month_end_span(
        self, year: int, month: int, rule: MonthEndClose
    ) -> tuple[date, date] | None:
        nxt_year, nxt_month = (year + 1, 1) if month == 12 else (year, month + 1)
        last = self.business_days(year, month)[::-1][: rule.last_business_days][::-1]
        first = self.business_days(nxt_year, nxt_month)[: rule.first_business_days]
        chosen = last + first
        if not chosen:
            return None
        return chosen[0], chosen[-1]

    # -- windows -------------------------------------------------------------------
    def covers(self, window: BlackoutWindow, day: date) -> bool:
        """Whether ``window`` covers the local date ``day``."""
        if window.start is not None and window.end is not None:
            return window.start <= day <= window.end
        rule = window.month_end
        assert rule is not None  # the model allows exactly one kind
        previous = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
        for year, month in (previous, (day.year, day.month)):
            span = self.month_end_span(year, month, rule)
            if span is not None and span[0] <= day <= span[1]:
                return True
        return False

    def local_date(self, at: datetime) -> date:
        if at.tzinfo is None:
            raise ValueError("the calendar needs an aware datetime (UTC), got a naive one")
        return at.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """The first instant of a local date, in UTC. Where midnight does not exist (a
        daylight-saving gap at 00:00) ``fold=0`` gives the instant the day begins."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def active(self, at: datetime) -> list[ActiveBlackout]:
        """The windows in effect at ``at`` (aware), each with its end."""
        today = self.local_date(at)
        found = []
        for window in self.settings.blackouts:
            if not self.covers(window, today):
                continue
            last, open_ended = today, True
            # a window runs on while it covers the next day (one close into the next)
            for _ in range(MAX_SCAN_DAYS):
                if not self.covers(window, last + timedelta(days=1)):
                    open_ended = False
                    break
                last += timedelta(days=1)
            found.append(
                ActiveBlackout(
                    window.name,
                    window.reason,
                    self.start_of(last + timedelta(days=1)),
                    self.settings.timezone,
                    open_ended,
                )
            )
        return found


def require_windows(settings: BusinessCalendar | None, names: Iterable[str], where: str) -> None:
    """``ConfigError`` unless every overridden name is a window of the calendar: a typo
    in ``--override-blackout`` must not look like consent, nor pass silently."""
    known = [w.name for w in settings.blackouts] if settings is not None else []
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{where}: --override-blackout={name}: no such window in "
                f"safety.calendar.blackouts (defined: {', '.join(known) or 'none'})"
            )
