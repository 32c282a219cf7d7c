"""The school's procedure for incidents (the Ingham policy, Appendix 3), as data.

Every immediate alert opens or joins an incident of one of these kinds.  Each
kind names the row of the policy's sanctions tables it falls under, for pupils
and for staff, and the actions those rows mark; the alert emails print the
next steps, and `schoolgate incidents show` the suggested actions.

The staff table of the policy text has its "Refer to Technical Support Staff
for action re filtering etc." heading split over two columns; both are read
as that one action here.  Self-harm, bullying and extremism searches have no
row of their own: they are child protection concerns (policy 4.2), dealt with
under the school's child protection procedures.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from alerts.hits import Hit

logger = logging.getLogger(__name__)

ACTIONS: dict[str, str] = {
    "refer-class-teacher": "Refer to class teacher",
    "refer-head-teacher": "Refer to Head Teacher",
    "refer-police": "Refer to Police",
    "refer-technical-support": "Refer to technical support staff for action re filtering/security",
    "inform-parents": "Inform parents/carers",
    "remove-network-access": "Removal of network/internet access rights",
    "warning": "Warning",
    "further-sanction": "Further sanction, e.g. detention/exclusion",
    "refer-local-authority-hr": "Refer to Local Authority/HR",
    "suspension": "Suspension",
    "disciplinary-action": "Disciplinary action",
    "report-iwf": "Report to the Internet Watch Foundation (IWF)",
    "note": "Note",
    "close": "Close the incident",
}
REMOVE_ACCESS = "remove-network-access"
CLOSE = "close"


@dataclass(frozen=True)
class IncidentKind:
    name: str
    title: str                          # in words
    pupil_row: str                      # the row of the pupils' table
    pupil_actions: tuple[str, ...]
    staff_row: str                      # the row of the staff table
    staff_actions: tuple[str, ...]

    def suggested(self, pupil: bool) -> tuple[str, tuple[str, ...]]:
        """The table row and its actions for a pupil or a member of staff."""
        return (self.pupil_row, self.pupil_actions) if pupil else (self.staff_row, self.staff_actions)


KINDS: dict[str, IncidentKind] = {k.name: k for k in (
    IncidentKind(
        "illegal", "access to material that could be illegal",
        "Deliberately accessing or trying to access material that could be considered illegal",
        ("refer-head-teacher", "refer-police"),
        "Deliberately accessing or trying to access material that could be considered illegal",
        ("refer-local-authority-hr", "refer-police", "disciplinary-action")),
    IncidentKind(
        "offensive", "offensive or pornographic material",
        "Deliberately accessing or trying to access offensive or pornographic material",
        ("refer-head-teacher", "inform-parents", "remove-network-access", "warning", "further-sanction"),
        "Deliberately accessing or trying to access offensive or pornographic material",
        ("refer-local-authority-hr", "disciplinary-action")),
    IncidentKind(
        "circumvention", "getting round the filter",
        "Using proxy sites or other means to subvert the school's filtering system",
        ("refer-head-teacher", "inform-parents", "remove-network-access"),
        "Using proxy sites or other means to subvert the school's filtering system",
        ("refer-local-authority-hr",)),
    IncidentKind(
        "safeguarding", "a child protection concern (self-harm, bullying, extremism)",
        "A concern of a child protection nature: follow the child protection procedures (policy 4.2)",
        ("refer-head-teacher", "inform-parents"),
        "A concern about a member of staff: refer to the Head Teacher (policy 4.2)",
        ("refer-head-teacher",)),
    IncidentKind(
        "security", "hacking, attacks or spying tools",
        "No row of its own; nearest: unauthorised downloading or uploading of files",
        ("refer-head-teacher", "refer-technical-support"),
        "Deliberate actions to breach data protection or network security rules",
        ("refer-local-authority-hr", "refer-technical-support", "disciplinary-action")),
    IncidentKind(
        "repeated", "repeated attempts to reach blocked sites",
        "Unauthorised use of non-educational sites during lessons",
        ("refer-class-teacher",),
        "Inappropriate personal use of the internet/social media/personal email",
        ("refer-local-authority-hr",)),
)}

_SECURITY = frozenset({"hacking", "ddos", "stalkerware", "malware", "phishing", "cryptojacking"})
_SAFEGUARDING_TOPICS = frozenset({"self_harm", "bullying", "extremism"})

ILLEGAL_STEPS = (
    "Do not investigate: do not visit, search for or try to view the address, and do not ask anyone to show it "
    "to you.",
    "Secure the device: isolate it as it is. Do not switch it off, use it or change it; any change may hinder a "
    "police investigation.",
    "Contact the police at the earliest opportunity; images of child sexual abuse are also reported to the "
    "Internet Watch Foundation (IWF).",
    "Involve more than one senior member of staff, and follow the school's child protection procedures.",
)
COMMON_STEPS = (
    "Have more than one senior member of staff involved in dealing with this (policy, Appendix 3).",
    "If anyone needs to look at the site, use a designated computer that young people do not use, record the "
    "URL and describe the nature of the content.",
    "Decide whether the concern has substance, then act in proportion; the policy's suggested actions are "
    "below.",
)
SAFEGUARDING_STEPS = (
    "This may be a child protection concern: follow the school's child protection procedures and speak to the "
    "Designated Safeguarding Lead today.",
    "If the material promotes terrorism or extremism, or shows grooming behaviour, consult the police.",
)
STAFF_STEP = "Any complaint about staff misuse must be referred to the Head Teacher (policy 4.2)."


def kind_of(hit: Hit) -> str:
    """The incident kind a hit belongs to."""
    if hit.kind == "illegal":
        return "illegal"
    if hit.kind == "repeated":
        return "repeated"
    if hit.kind in ("circumvention", "bare_ip"):
        return "circumvention"
    if hit.kind == "watchlist":
        return "safeguarding" if hit.watch_topic in _SAFEGUARDING_TOPICS or not hit.watch_topic else "offensive"
    if hit.category in _SECURITY:
        return "security"
    return "offensive"


def is_pupil(role: str | None, group_is_pupil: bool) -> bool:
    """A pupil by role; with no known role, by the filter group (a KS2 laptop is a pupil's)."""
    if role:
        return role == "pupil"
    return group_is_pupil


def next_steps(kind: str, pupil: bool, reference: str) -> list[str]:
    """What to do next, in order, for an incident of `kind`."""
    record = (f"Record each step: schoolgate incidents record {reference} --action ACTION --outcome TEXT "
              "--by NAME.")
    if kind == "illegal":
        return [*ILLEGAL_STEPS, record]
    steps = list(COMMON_STEPS)
    if kind == "safeguarding":
        steps[0:0] = SAFEGUARDING_STEPS
    if not pupil:
        steps.insert(0, STAFF_STEP)
    return [*steps, record]


def suggested_actions(kind: str, pupil: bool) -> tuple[str, list[str]]:
    """The policy table's row and its actions (in words) for the incident."""
    found = KINDS.get(kind, KINDS["offensive"])
    row, actions = found.suggested(pupil)
    return row, [ACTIONS[a] for a in actions]
