"""The conditions pairwatch reports on a pair (DESIGN.md "Conditions"): the one place each is
named. The correlator registers a check for each (`collector.correlator`), the report a
diagnosis (`collector.report`); both refuse to import when one is missing."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONDITIONS", "REGISTRY", "Condition"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition.

    `name` is the `condition` label of `dhcp_failover_condition` and an incident's `condition`; `limits`,
    the `[limits]` keys (`collector.config.Limits`, whose defaults they take) that say how
    long a pair may be in it before it counts; `advice`, what the report tells an operator to
    do while it lasts (None: the diagnosis itself says it)."""

    name: str
    limits: tuple[str, ...] = ()
    advice: str | None = None


PARTNER_DOWN = Condition("partner_down")
COMMUNICATIONS_INTERRUPTED = Condition("communications_interrupted")
STUCK = Condition("stuck", ("mclt", "recover_wait_grace", "startup", "recover", "recover_done", "potential_conflict",
                            "resolution_interrupted", "conflict_done", "kea_waiting", "kea_syncing", "kea_ready"))
SPLIT_BRAIN = Condition("split_brain", ("split_brain_hold",))
VIEWS_DISAGREE = Condition("views_disagree", ("views_disagree",),
                           "check the failover link between them and both servers' log forwarding")
NOT_SERVING = Condition("not_serving", ("not_serving_window", "server_silent"),
                        "new clients get no address and renewals fail as leases run out")
SERVER_SILENT = Condition("server_silent", ("server_silent",), "check dhcpd on {who} and its rsyslog forwarding")
SYNC_SLOW = Condition("sync_slow", ("sync_slow",),
                      "check the link between the servers and the partner: until the resync ends {who} serves nobody")
POOL_EXHAUSTED = Condition("pool_exhausted", ("pool_exhausted_window",),
                           "add addresses or shorten lease times; a server in communications-interrupted "
                           "cannot use its partner's share until partner-down")
REGISTRY = (PARTNER_DOWN, COMMUNICATIONS_INTERRUPTED, STUCK, SPLIT_BRAIN, VIEWS_DISAGREE, NOT_SERVING, SERVER_SILENT,
            SYNC_SLOW, POOL_EXHAUSTED)
"""Every condition, in the order DESIGN.md lists them (and metrics and reports show them)."""
CONDITIONS = tuple(condition.name for condition in REGISTRY)
