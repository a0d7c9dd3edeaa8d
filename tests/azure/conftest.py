"""Fixtures of the Azure backend tests (defined in ``arm_helpers``)."""

from arm_helpers import arm, arm_server, platform

__all__ = ["arm", "arm_server", "platform"]
