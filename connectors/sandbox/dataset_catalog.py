"""Fixed reference data of generated sandbox datasets: pipelines, stages and word pools.

`STAGE_MAP` (the funnel key of every native stage) is what `mapping.propose_stage_map` proposes
for these stages with the default funnel, so a sandbox config written "as init would propose"
reads the data as the generator meant it (a test guards this). Every native stage's
probability equals its funnel stage's, so agreeing copies map to the same probability.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPANIES",
    "COMPANY_SUFFIXES",
    "FIRST_NAMES",
    "FUNNEL_PROBABILITY",
    "LAST_NAMES",
    "LINES",
    "PRODUCTS",
    "STAGES",
    "STAGE_MAP",
    "NativeStage",
]

# Product lines: each real deal belongs to one; HubSpot and Pipedrive give each its own
# pipeline, Salesforce (one pipeline) shares its stages between them.
LINES = ("sales", "renewals")

FUNNEL_PROBABILITY = {
    "lead": 10,
    "qualified": 25,
    "proposal": 50,
    "negotiation": 75,
    "won": 100,
    "lost": 0,
}


@dataclass(frozen=True, slots=True)
class NativeStage:
    id: str  # the native stage id (SF ApiName, HubSpot stage id, Pipedrive stage id)
    label: str
    funnel_key: str
    pipeline: str  # native pipeline id

    @property
    def probability(self) -> int:
        return FUNNEL_PROBABILITY[self.funnel_key]

    @property
    def is_closed(self) -> bool:
        return self.funnel_key in ("won", "lost")


def _stages(pipeline: str, rows: tuple[tuple[str, str, str], ...]) -> tuple[NativeStage, ...]:
    return tuple(NativeStage(sid, label, key, pipeline) for sid, label, key in rows)


_SF_STAGES = _stages(
    "default",
    (
        ("Prospecting", "Prospecting", "lead"),
        ("Qualification", "Qualification", "qualified"),
        ("Needs Analysis", "Needs Analysis", "qualified"),
        ("Value Proposition", "Value Proposition", "proposal"),
        ("Proposal/Price Quote", "Proposal/Price Quote", "proposal"),
        ("Negotiation/Review", "Negotiation/Review", "negotiation"),
        ("Closed Won", "Closed Won", "won"),
        ("Closed Lost", "Closed Lost", "lost"),
    ),
)

# STAGES[system][line]: the native stages a deal of that product line moves through, in
# pipeline order. Pipedrive has no won/lost stages: its `status` closes a deal in place.
STAGES: dict[str, dict[str, tuple[NativeStage, ...]]] = {
    "salesforce": {"sales": _SF_STAGES, "renewals": _SF_STAGES},
    "hubspot": {
        "sales": _stages(
            "default",
            (
                ("75210930", "New Lead", "lead"),  # added by the org: HubSpot has none
                ("appointmentscheduled", "Appointment Scheduled", "qualified"),
                ("qualifiedtobuy", "Qualified To Buy", "qualified"),
                ("presentationscheduled", "Presentation Scheduled", "proposal"),
                ("decisionmakerboughtin", "Decision Maker Bought-In", "negotiation"),
                ("contractsent", "Contract Sent", "negotiation"),
                ("closedwon", "Closed Won", "won"),
                ("closedlost", "Closed Lost", "lost"),
            ),
        ),
        "renewals": _stages(
            "renewals",
            (
                ("75210931", "Renewal Due", "lead"),
                ("75210932", "Customer Contacted", "qualified"),
                ("75210933", "Quote Sent", "proposal"),
                ("75210934", "Verbal Commit", "negotiation"),
                ("75210935", "Renewed", "won"),
                ("75210936", "Churned", "lost"),
            ),
        ),
    },
    "pipedrive": {
        "sales": _stages(
            "1",
            (
                ("1", "Lead In", "lead"),
                ("2", "Contact Made", "qualified"),
                ("3", "Demo Scheduled", "proposal"),
                ("4", "Proposal Made", "proposal"),
                ("5", "Negotiations Started", "negotiation"),
            ),
        ),
        "renewals": _stages(
            "2",
            (
                ("6", "Renewal Due", "lead"),
                ("7", "Customer Contacted", "qualified"),
                ("8", "Quote Sent", "proposal"),
                ("9", "Verbal Commit", "negotiation"),
            ),
        ),
    },
}

# The truth the generator used: {system: {pipeline id: {native stage id: funnel key}}}.
STAGE_MAP: dict[str, dict[str, dict[str, str]]] = {
    system: {
        stages[0].pipeline: {s.id: s.funnel_key for s in stages} for stages in by_line.values()
    }
    for system, by_line in STAGES.items()
}

COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
    "Wonka", "Tyrell", "Cyberdyne", "Soylent", "Vandelay", "Pied Piper", "Gringotts", "Monarch",
    "Oscorp", "Nakatomi", "Dunder Mifflin", "Massive Dynamic", "Aperture", "Black Mesa",
    "Blue Sun", "Weyland", "Zorin", "Virtucon", "Bluth", "Prestige Worldwide", "Sterling Cooper",
    "Los Pollos", "Krusty", "Duff", "Gekko", "Rekall", "Ollivander", "Spacely", "Cogswell",
    "Ajax", "Atlas", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adventure Works",
    "Wingtip", "Proseware", "Lucerne", "Fourth Coffee", "Alpine Ski", "Coho", "Margie", "Trey",
    "Woodgrove", "Humongous", "Blue Yonder", "Graphic Design", "Southridge", "Datum", "Relecloud",
    "Consolidated Messenger", "Bellows", "Halcyon", "Meridian", "Polaris", "Quantum", "Vertex",
    "Keystone", "Summit", "Evergreen", "Ironclad", "Redwood", "Silverline", "Brightwater",
    "Copperfield", "Oakridge", "Stonebridge", "Clearwater", "Riverside", "Highland", "Lakeshore",
)  # fmt: skip

COMPANY_SUFFIXES = ("Inc", "Corp", "GmbH", "Ltd", "LLC", "AG", "SA", "BV", "Group", "Holdings")

PRODUCTS = {
    "sales": (
        "New Business", "Expansion", "Enterprise License", "Pilot", "Upsell", "Platform Migration",
        "Professional Services", "Team Plan", "Analytics Add-on", "Onboarding Package",
    ),
    "renewals": ("Renewal", "Annual Renewal", "Support Renewal", "Multi-year Renewal"),
}  # fmt: skip

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip

LAST_NAMES = (
    "Schmidt", "Okafor", "Rossi", "Nguyen", "Garcia", "Kowalski", "Haddad", "Lindqvist", "Tanaka",
    "Dubois", "Murphy", "Silva", "Novak", "Chen", "Andersen", "Moreau", "Patel", "Fischer",
)  # fmt: skip
