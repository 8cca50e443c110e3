"""What `check` says of a field the org lacks: Salesforce's INVALID_FIELD answer to a query
carries the query, a caret and "ERROR at Row:1:Column:12" before the words that matter."""

from __future__ import annotations

from connectors.salesforce_wire import missing_column

REAL = (
    "INVALID_FIELD: \nSELECT Id, EMEA_Opportunity_Id__c FROM Opportunity LIMIT 1\n"
    "           ^\nERROR at Row:1:Column:12\nNo such column 'EMEA_Opportunity_Id__c' on "
    "entity 'Opportunity'. If you are attempting to use a custom field, be sure to append the "
    "'__c' after the custom field name. Please reference your WSDL or the describe call for "
    "the appropriate names."
)


def test_a_real_invalid_field_answer_is_cut_to_the_column_it_names() -> None:
    assert missing_column(REAL) == (
        "No such column 'EMEA_Opportunity_Id__c' on entity 'Opportunity'"
    )


def test_an_answer_in_another_shape_keeps_its_first_sentence_on_one_line() -> None:
    assert missing_column("INVALID_FIELD: Some\nother   words. More.") == (
        "INVALID_FIELD: Some other words"
    )
