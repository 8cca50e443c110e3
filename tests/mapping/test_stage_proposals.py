"""`crmsync init` stage-map proposals and mapping coverage on each CRM's default stages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mapping import (
    DEFAULT_FUNNEL,
    NativeStage,
    Proposal,
    coverage,
    propose_stage_map,
    stage_map_from_proposals,
)
from mapping.funnel import Funnel, FunnelStage, Phase
from tests.mapping.conftest import make_ctx


def _proposal(kind: str) -> dict[str, tuple[str, str]]:
    native = make_ctx(kind).native_stages
    [stages] = propose_stage_map(native, DEFAULT_FUNNEL).values()
    return {sid: (p.funnel_key, p.confidence) for sid, p in stages.items()}


def test_salesforce_default_stages_are_proposed() -> None:
    assert _proposal("salesforce") == {
        "Prospecting": ("lead", "guess"),
        "Qualification": ("qualified", "guess"),
        "Needs Analysis": ("qualified", "guess"),
        "Value Proposition": ("proposal", "guess"),
        "Id. Decision Makers": ("proposal", "guess"),
        "Perception Analysis": ("proposal", "guess"),
        "Proposal/Price Quote": ("proposal", "guess"),
        "Negotiation/Review": ("negotiation", "guess"),
        "Closed Won": ("won", "exact"),
        "Closed Lost": ("lost", "exact"),
    }


def test_hubspot_default_stages_are_proposed() -> None:
    assert _proposal("hubspot") == {
        "appointmentscheduled": ("qualified", "guess"),
        "qualifiedtobuy": ("qualified", "guess"),
        "presentationscheduled": ("proposal", "guess"),
        "decisionmakerboughtin": ("negotiation", "guess"),
        "contractsent": ("negotiation", "guess"),
        "closedwon": ("won", "exact"),
        "closedlost": ("lost", "exact"),
    }


def test_pipedrive_default_stages_are_proposed_by_name_then_position() -> None:
    assert _proposal("pipedrive") == {
        "1": ("qualified", "exact"),  # "Qualified" is the funnel stage's own name
        "2": ("qualified", "guess"),  # "Contact Made": 2nd of 5 open stages
        "3": ("proposal", "guess"),  # "Demo Scheduled": 3rd of 5
        "4": ("proposal", "guess"),
        "5": ("negotiation", "guess"),
    }


def test_flags_beat_names() -> None:
    stages = [NativeStage("x", "New lead lost", 1, Decimal(0), is_closed=True)]
    [proposal] = propose_stage_map({"p": stages}, DEFAULT_FUNNEL)["p"].values()
    assert (proposal.funnel_key, proposal.confidence) == ("lost", "exact")


def test_open_stages_without_keywords_spread_over_the_funnel_in_order() -> None:
    stages = [NativeStage(str(i), f"Step {i}", i, None) for i in range(1, 8)]
    proposal = propose_stage_map({"p": stages}, DEFAULT_FUNNEL)["p"]
    keys = [proposal[str(i)].funnel_key for i in range(1, 8)]
    assert keys[0] == "lead" and keys[-1] == "negotiation"
    order = [DEFAULT_FUNNEL.keys.index(k) for k in keys]
    assert order == sorted(order)
    assert all("in pipeline order" in proposal[str(i)].why for i in range(1, 8))


def test_proposals_are_deterministic_regardless_of_input_order() -> None:
    stages = list(make_ctx("salesforce").native_stages["default"])
    forward = propose_stage_map({"default": stages}, DEFAULT_FUNNEL)
    backward = propose_stage_map({"default": stages[::-1]}, DEFAULT_FUNNEL)
    assert forward == backward


def test_coverage_lists_mapped_unmapped_and_unknown_stages() -> None:
    ctx = make_ctx("hubspot")
    stage_map = {"default": {"closedwon": "won", "closedlost": "lost", "gone": "lead"}}
    result = coverage(stage_map, ctx.native_stages)["default"]
    assert result.mapped == ("closedwon", "closedlost")
    assert result.unmapped[:2] == ("appointmentscheduled", "qualifiedtobuy")
    assert result.unknown == ("gone",)
    assert not result.complete
    full = coverage(make_ctx("hubspot").stage_map, ctx.native_stages)["default"]
    assert full.complete


@pytest.mark.parametrize("first", ["qualifiedtobuy", "appointmentscheduled"])
def test_reverse_map_picks_the_first_stage_in_pipeline_order(first: str) -> None:
    ctx = make_ctx("hubspot")
    # Both map to "qualified"; dict order of the map must not matter.
    others = {k: v for k, v in ctx.stage_map["default"].items() if k != first}
    reordered = make_ctx("hubspot", stage_map={"default": {first: "qualified", **others}})
    assert reordered.native_stage_for("default", "qualified") == "appointmentscheduled"
    assert reordered.native_stage_for("default", "lead") is None


def _stages(*rows: tuple[str, bool, bool]) -> list[NativeStage]:
    """(label, closed, won) in pipeline order; the label doubles as the id."""
    return [
        NativeStage(label, label, order, None, is_closed=closed, is_won=won)
        for order, (label, closed, won) in enumerate(rows, 1)
    ]


def _propose(stages: list[NativeStage], funnel: Funnel = DEFAULT_FUNNEL) -> dict[str, Proposal]:
    return propose_stage_map({"p": stages}, funnel)["p"]


def _funnel(*rows: tuple[str, bool, bool]) -> Funnel:
    """(key, closed, won) in pipeline order."""
    return Funnel.build(
        "custom",
        (
            FunnelStage(
                key, key.replace("_", " ").capitalize(), i, Phase.DECISION, Decimal(0), c, w
            )
            for i, (key, c, w) in enumerate(rows, 1)
        ),
    )


def test_every_closed_lost_stage_is_lost_when_the_funnel_has_one_lost_stage() -> None:
    custom = _stages(
        ("Prospecting", False, False),
        ("Closed Won - Pending Signature", True, True),
        ("Closed Won", True, True),
        ("Closed Lost - Price", True, False),
        ("Disqualified", True, False),
        ("No Decision", True, False),
    )
    proposal = _propose(custom)
    assert {s: (p.funnel_key, p.confidence) for s, p in proposal.items() if s != "Prospecting"} == {
        "Closed Won - Pending Signature": ("won", "exact"),
        "Closed Won": ("won", "exact"),
        "Closed Lost - Price": ("lost", "exact"),
        "Disqualified": ("lost", "exact"),
        "No Decision": ("lost", "exact"),
    }


SEVERAL_LOST = (
    ("lead", False, False),
    ("won", True, True),
    ("churned", True, False),
    ("disqualified", True, False),
    ("lost", True, False),
)


def test_a_closed_lost_stage_goes_to_the_lost_stage_it_is_named_after() -> None:
    proposal = _propose(
        _stages(("Disqualified", True, False), ("Closed Lost", True, False)), _funnel(*SEVERAL_LOST)
    )
    assert (proposal["Disqualified"].funnel_key, proposal["Disqualified"].confidence) == (
        "disqualified",
        "exact",
    )
    assert proposal["Closed Lost"].funnel_key == "lost"
    assert proposal["Closed Lost"].confidence == "guess"


def test_a_closed_lost_stage_named_after_no_lost_stage_is_left_to_a_person() -> None:
    """It went to the funnel's first lost stage, marked exact: 'No Decision' became 'churned'."""
    proposal = _propose(_stages(("No Decision", True, False)), _funnel(*SEVERAL_LOST))
    [left] = proposal.values()
    assert (left.funnel_key, left.confidence) == (None, "none")
    assert "churned, disqualified, lost" in left.why


@pytest.mark.parametrize(
    "label",
    ["Closed Won", "Won", "Lost", "Closed Lost - Price", "Not qualified", "Disqualified",
     "No Decision", "Closed Won - Pending Signature", "Gewonnen", "Verloren", "Perdu", "Gagné",
     "Ganado", "Perdido"],
)  # fmt: skip
def test_an_open_stage_named_like_a_closed_one_is_left_to_a_person(label: str) -> None:
    """Pipedrive's stages are all open (won and lost are statuses), and a CRM may keep such a
    stage open: it went by position to proposal or negotiation ('Not qualified' to qualified)."""
    stages = _stages(("New", False, False), ("Proposal Made", False, False), (label, False, False))
    proposal = _propose(stages)
    assert (proposal[label].funnel_key, proposal[label].confidence) == (None, "none")
    assert "open" in proposal[label].why and "closed" in proposal[label].why
    assert proposal["New"].funnel_key == "lead"
    assert proposal["Proposal Made"].funnel_key == "proposal"


def test_position_guesses_never_land_on_a_stage_after_won() -> None:
    """A pre-sale stage was spread onto the funnel's post-sale 'onboarding' stage."""
    funnel = _funnel(
        ("lead", False, False),
        ("proposal", False, False),
        ("won", True, True),
        ("onboarding", False, False),
        ("lost", True, False),
    )
    stages = _stages(("Inbound", False, False), ("Demo", False, False), ("Verbal", False, False))
    keys = [p.funnel_key for p in _propose(stages, funnel).values()]
    assert keys == ["lead", "proposal", "proposal"]
    assert _propose(_stages(("Onboarding", False, False)), funnel)["Onboarding"].funnel_key == (
        "onboarding"
    )


def test_an_open_stage_is_left_to_a_person_when_the_funnel_has_no_open_stage() -> None:
    """No proposal at all was made, and `init` failed on the missing stage."""
    funnel = _funnel(("won", True, True), ("lost", True, False))
    [left] = _propose(_stages(("Discovery", False, False)), funnel).values()
    assert (left.funnel_key, left.confidence) == (None, "none")
    assert stage_map_from_proposals({"p": {"Discovery": left}}) == {"p": {}}


@pytest.mark.parametrize(
    ("label", "key"),
    [("Neuer Lead", "lead"), ("Qualifiziert", "qualified"), ("Angebot", "proposal"),
     ("Verhandlung", "negotiation"), ("Nouveau", "lead"), ("Proposition commerciale", "proposal"),
     ("Négociation", "negotiation"), ("Nuevo", "lead"), ("Calificado", "qualified"),
     ("Propuesta", "proposal"), ("Negociación", "negotiation")],
)  # fmt: skip
def test_german_french_and_spanish_stage_names_are_guessed_by_name(label: str, key: str) -> None:
    """Out of pipeline order, so that only the name can place them."""
    stages = _stages((label, False, False), ("Step 1", False, False), ("Step 2", False, False))
    proposal = _propose(stages[::-1])[label]
    assert (proposal.funnel_key, proposal.confidence) == (key, "guess")
    assert "contains" in proposal.why


def test_a_label_matches_the_funnel_stage_it_spells_with_or_without_accents() -> None:
    """'Négociation' was read as the words 'n gociation': a CRM's 'Negociation' never matched."""
    funnel = _funnel(("nego", False, False), ("won", True, True), ("lost", True, False))
    french = FunnelStage("nego", "Négociation", 1, Phase.DECISION, Decimal("0.5"))
    funnel = Funnel.build("fr", (french, *funnel.stages[1:]))
    for label in ("Negociation", "NÉGOCIATION"):
        [proposal] = _propose(_stages((label, False, False)), funnel).values()
        assert (proposal.funnel_key, proposal.confidence) == ("nego", "exact"), label


def test_an_open_stage_of_probability_zero_among_likelier_ones_is_left_to_a_person() -> None:
    """A parking stage ('Pausiert', 'On hold') took a position, proposal here; pushing a deal
    to proposal then wrote it into that stage, the first proposal stage in pipeline order."""
    rows = [("Neuer Lead", "0.1"), ("Qualifiziert", "0.2"), ("Pausiert", "0"), ("Angebot", "0.5"),
            ("Verhandlung", "0.8"), ("Gewonnen", "1"), ("Verloren", "0")]  # fmt: skip
    stages = [
        NativeStage(label, label, i, Decimal(p), is_closed=i > 5, is_won=i == 6)
        for i, (label, p) in enumerate(rows, 1)
    ]
    proposal = _propose(stages)
    assert (proposal["Pausiert"].funnel_key, proposal["Pausiert"].confidence) == (None, "none")
    assert "probability 0" in proposal["Pausiert"].why
    assert [proposal[s].funnel_key for s in ("Neuer Lead", "Angebot", "Gewonnen", "Verloren")] == [
        "lead",
        "proposal",
        "won",
        "lost",
    ]


def test_open_stages_all_of_probability_zero_are_placed_as_usual() -> None:
    stages = [NativeStage(str(i), f"Step {i}", i, Decimal(0)) for i in range(1, 5)]
    keys = [p.funnel_key for p in _propose(stages).values()]
    assert keys == ["lead", "qualified", "proposal", "negotiation"]


def test_name_guesses_never_run_backwards_in_pipeline_order() -> None:
    """'Id. Decision Makers' (60 %) went to negotiation by its word 'decision' and 'Perception
    Analysis' (70 %) back to qualified, both before 'Proposal/Price Quote': a deal pushed to
    negotiation was written into Salesforce as 'Id. Decision Makers'."""
    proposal = _proposal("salesforce")
    keys = [proposal[s.id][0] for s in make_ctx("salesforce").native_stages["default"]]
    order = [DEFAULT_FUNNEL.keys.index(k) for k in keys]
    assert order == sorted(order)
    assert proposal["Id. Decision Makers"] == ("proposal", "guess")
    assert proposal["Perception Analysis"] == ("proposal", "guess")
    assert proposal["Negotiation/Review"] == ("negotiation", "guess")
    ctx = make_ctx("salesforce")
    assert ctx.native_stage_for("default", "negotiation") == "Negotiation/Review"


def test_a_stage_named_with_its_funnels_own_name_is_guessed_by_its_other_words() -> None:
    """A renewals pipeline names its stages "Renewal Quoted", "Renewal Committed": the word
    the funnel is named by tells no stage apart. "Renewal Committed" was guessed as
    renewal_due, the first stage with "renewal" in its key."""
    funnel = Funnel(
        "renewal",
        (
            FunnelStage("renewal_due", "Renewal due", 1, Phase.AWARENESS, Decimal("0.2")),
            FunnelStage("quoted", "Quoted", 2, Phase.INTEREST, Decimal("0.5")),
            FunnelStage("committed", "Committed", 3, Phase.DECISION, Decimal("0.9")),
            FunnelStage("renewed", "Renewed", 4, Phase.ACTION, Decimal(1), True, True),
            FunnelStage("churned", "Churned", 5, Phase.ACTION, Decimal(0), True),
        ),
    )
    native = (
        NativeStage("r1", "Renewal Due", 0, None),
        NativeStage("r2", "Renewal Quoted", 1, None),
        NativeStage("r3", "Renewal Committed", 2, None),
        NativeStage("r4", "Renewed", 3, None, is_closed=True, is_won=True),
    )
    proposals = propose_stage_map({"renewals": native}, funnel)["renewals"]
    assert {k: p.funnel_key for k, p in proposals.items()} == {
        "r1": "renewal_due",
        "r2": "quoted",
        "r3": "committed",
        "r4": "renewed",
    }
