"""Who approves a runbook step: the environment a CI job sets, a file an approver
outside the run writes, a delay that is said to be one -- each decides exactly the
steps it names, and an unattended run never guesses yes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerdrill.errors import ConfigError
from ledgerdrill.safety.approval import (
    APPROVE_ENV,
    REJECT_ENV,
    ApprovalRequest,
    Decision,
    after_delay,
    chain,
    from_environment,
    from_file,
)

KINDS = ["region-failover", "point-in-time-restore", "release-rollback", "certificate-rotation"]


def ask(kind: str) -> ApprovalRequest:
    return ApprovalRequest("scenario", kind, f"do {kind}")


@given(
    approve=st.lists(st.sampled_from(KINDS), unique=True),
    reject=st.lists(st.sampled_from(KINDS), unique=True),
    kind=st.sampled_from(KINDS),
)
def test_the_environment_approves_only_what_it_names_and_a_rejection_wins(
    approve: list[str], reject: list[str], kind: str
) -> None:
    env = {APPROVE_ENV: ", ".join(approve), REJECT_ENV: ",".join(reject)}
    decision = from_environment(env)(ask(kind))
    assert decision.approved == (kind in approve and kind not in reject)
    assert decision.by.startswith("environment")


def test_all_approves_every_step_unless_one_is_rejected() -> None:
    decide = from_environment({APPROVE_ENV: "all", REJECT_ENV: "region-failover"})
    assert decide(ask("point-in-time-restore")).approved
    assert not decide(ask("region-failover")).approved


def test_the_file_is_read_until_the_step_is_named(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    now = [0.0]

    def sleep(seconds: float) -> None:  # the approver writes the file while we wait
        now[0] += seconds
        if now[0] >= 3:
            path.write_text("approve: [region-failover]\n")

    decide = from_file(path, timeout_s=60, clock=lambda: now[0], sleep=sleep)
    decision = decide(ask("region-failover"))
    assert decision.approved and now[0] == 3.0
    assert decision.by == f"file {path}"


def test_the_file_rejects_and_a_silent_file_declines_at_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    path.write_text("reject: all\n")
    assert not from_file(path, timeout_s=5)(ask("point-in-time-restore")).approved
    path.write_text("approve: [release-rollback]\n")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    decision = from_file(path, timeout_s=5, clock=lambda: now[0], sleep=sleep)(
        ask("region-failover")
    )
    assert not decision.approved and "within 5s" in decision.reason and now[0] >= 5


def test_a_malformed_approvals_file_names_the_file_and_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    path.write_text("yes: please\n")
    with pytest.raises(ConfigError, match=r"approvals.yaml: an approvals file is a mapping"):
        from_file(path, timeout_s=1)(ask("region-failover"))


def test_a_delay_says_it_was_not_a_person_and_a_chain_asks_in_order() -> None:
    slept: list[float] = []
    decision = after_delay(2.5, sleep=slept.append)(ask("region-failover"))
    assert decision.approved and slept == [2.5] and "no person asked" in decision.by
    asked: list[str] = []

    def passes(request: ApprovalRequest) -> Decision | None:
        asked.append("first")
        return None

    def declines(request: ApprovalRequest) -> Decision | None:
        asked.append("second")
        return Decision(False, "second")

    final = chain([passes, declines], after_delay(0, sleep=slept.append))(ask("x"))
    assert asked == ["first", "second"] and not final.approved and final.by == "second"
