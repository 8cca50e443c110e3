"""The funnel `crmsync init` proposes for a pipeline from its name: one whose key's every word
is a word of the pipeline's label or id, never the default, nothing on a tie."""

from __future__ import annotations

from mapping.pipeline_funnels import propose_pipeline_funnel

FUNNELS = ["default", "renewal", "partner", "partner_renewal"]


def test_a_pipeline_named_in_the_plural_of_a_funnel_gets_that_funnel() -> None:
    guess = propose_pipeline_funnel("Renewals", "75210931", FUNNELS)
    assert guess is not None and guess.funnel == "renewal"
    assert guess.why == "pipeline 'Renewals' is named like funnel renewal"


def test_the_funnel_matching_most_words_wins() -> None:
    guess = propose_pipeline_funnel("Partner Renewals EMEA", "7", FUNNELS)
    assert guess is not None and guess.funnel == "partner_renewal"


def test_a_record_types_developer_name_counts_as_its_name() -> None:
    guess = propose_pipeline_funnel("Channel", "Partner_Channel", FUNNELS)
    assert guess is not None and guess.funnel == "partner"


def test_no_guess_without_a_matching_funnel_or_for_the_default() -> None:
    assert propose_pipeline_funnel("Sales Pipeline", "default", FUNNELS) is None
    assert propose_pipeline_funnel("Renewals", "2", ["default"]) is None


def test_no_guess_when_two_funnels_match_as_well() -> None:
    assert propose_pipeline_funnel("Renewals", "2", ["renewal", "renewals"]) is None
