"""The one value every filtering decision is made of.

HTTP, DNS, `schoolgate explain` and the tests all receive a `Decision` from
`proxy.policy.decide`; nothing else decides policy.  Like Blocky's answers,
every decision carries its type (`action`, `page`), the rule that fired and a
reason a person can read, and the query and visit logs keep them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


class Page(enum.StrEnum):
    """Which page a blocked request is answered with (one template each)."""

    NONE = "none"                      # allowed
    CATEGORY = "category"              # blocked category or site
    WALLED_GARDEN = "walled_garden"    # KS1: not on the allow list
    NOT_AUTHORISED = "not_authorised"  # pupil without parental consent yet
    ACCESS_REMOVED = "access_removed"  # banned or access revoked
    DEVICE_NOT_ALLOWED = "device_not_allowed"  # pupil-owned device
    ILLEGAL = "illegal"                # illegal tier: IWF wording, no URL echoed
    INTERNAL = "internal"              # internet-only device asking for the internal network
    REFUSED = "refused"                # client outside every configured network


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy says about one request.

    `rule` is a stable, machine-readable name of the rule that fired (for logs,
    reports and tests), `reason` is the same in words a teacher understands.
    `flagged` means the safeguarding leads must hear of it (alerts issue);
    `intercept` says whether TLS to this host may be decrypted.
    """

    action: Action
    group: str
    rule: str
    reason: str
    categories: tuple[str, ...] = ()
    page: Page = Page.NONE
    flagged: bool = False
    severity: str = ""          # "", "immediate" or "digest" when flagged
    intercept: bool = True
    override_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK

    def to_json(self) -> dict[str, object]:
        """The `schoolgate explain --json` contract of DESIGN.md (and a little more)."""
        return {
            "action": self.action.value,
            "group": self.group,
            "categories": list(self.categories),
            "reason": self.reason,
            "rule": self.rule,
            "alert": self.flagged,
            "severity": self.severity,
            "page": self.page.value,
            "intercept": self.intercept,
            "override_id": self.override_id,
        }
