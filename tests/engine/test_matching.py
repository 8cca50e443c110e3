from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pytest
from engine_deals import T0, by_system, deal
from hypothesis import given
from hypothesis import strategies as st

from mapping.model import Ref
from sync.match import LinkMethod, MatchConfig, MatchResult, entity_id_for, match
from sync.normalize import folded_name, match_key, match_keys, normalize_name

SF, HS, PD = "salesforce", "hubspot", "pipedrive"
KEYS = MatchConfig(keys=("name", "close_month"))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME   inc", "acme"),
        ("Société Générale S.A.", "societe generale"),
        ("Müller GmbH & Co. KG", "muller kg"),
        ("Globex Corporation - Renewal 2024", "globex renewal 2024"),
        ("The Company Co", "the"),
        ("Inc", "inc"),  # a name made only of suffixes keeps its words
        ("foo_bar-baz", "foo bar baz"),
        ("Renewal v1.0", "renewal v1 0"),  # a dot between digits separates them
        ("Ｐｈａｓｅ　１．５", "phase 1 5"),
    ],
)
def test_normalize_name_folds_case_accents_punctuation_and_suffixes(
    raw: str, normalised: str
) -> None:
    assert normalize_name(raw) == normalised


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_names_normalise_as_by_the_unicode_rules(text: str) -> None:
    # ASCII names take a byte-table fast path; it must key them as the general path would.
    assert normalize_name(text) == folded_name(text)


@given(st.lists(st.sampled_from(["Acme", "INC", "co.", "S.A.", "_", "-", "\t", "\x1f"])))
def test_ascii_fast_path_agrees_on_suffixes_and_separators(parts: list[str]) -> None:
    text = " ".join(parts)
    assert normalize_name(text) == folded_name(text)


def test_match_key_is_none_when_a_component_is_missing() -> None:
    assert match_key(deal(SF, "1", close=None), ("name", "close_month")) is None
    assert match_key(deal(SF, "1"), ("name", "close_month")) == ("acme renewal", "2024-06")
    assert match_key(deal(SF, "1", amount="1500.00"), ("amount",)) == ("1500 USD",)
    assert match_key(deal(SF, "1", extra={"account": "Acme Ltd"}), ("account",)) == ("acme",)


def test_unknown_match_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown match key colour"):
        MatchConfig(keys=("name", "colour"))


def _entity(result, ref: Ref) -> str:
    return result.entity_of()[ref]


def test_stored_links_keep_their_entity_even_when_keys_differ() -> None:
    a, b = deal(SF, "1", name="Alpha"), deal(HS, "9", name="Completely different")
    result = match(by_system([a, b]), {a.ref: "E-stored", b.ref: "E-stored"}, KEYS)
    assert result.entities == {"E-stored": {HS: b.ref, SF: a.ref}}
    assert result.new_links == {} and result.methods == {}


def test_external_id_links_deals_whatever_their_names() -> None:
    a = deal(SF, "006A", name="Alpha")
    b = deal(HS, "77", name="Beta", external_ids={SF: "006A"})
    result = match(by_system([a, b]), {}, KEYS)
    entity = _entity(result, a.ref)
    assert result.entities[entity] == {HS: b.ref, SF: a.ref}
    assert result.methods == {a.ref: LinkMethod.EXTERNAL_ID, b.ref: LinkMethod.EXTERNAL_ID}
    assert result.new_links == {a.ref: entity, b.ref: entity}


def test_link_marker_groups_deals_under_the_marker_as_entity_id() -> None:
    a = deal(SF, "1", name="Alpha", link_id="E-ours")
    b = deal(PD, "5", name="Gamma", link_id="E-ours")
    result = match(by_system([a, b]), {}, KEYS)
    assert result.entities == {"E-ours": {PD: b.ref, SF: a.ref}}
    assert set(result.methods.values()) == {LinkMethod.LINK_ID}


def test_normalised_key_matches_when_unique_on_both_sides() -> None:
    a = deal(SF, "1", name="Acme, Inc. renewal")
    b = deal(HS, "2", name="ACME renewal", close=date(2024, 6, 1))
    result = match(by_system([a, b]), {}, KEYS)
    assert result.methods == {a.ref: LinkMethod.KEY, b.ref: LinkMethod.KEY}
    assert result.unmatched == {}


def test_key_with_several_candidates_is_ambiguous_not_guessed() -> None:
    a = deal(SF, "1")
    b1, b2 = deal(HS, "2"), deal(HS, "3")
    result = match(by_system([a, b1, b2]), {}, KEYS)
    assert [(x.ref, x.candidates) for x in result.ambiguous] == [(a.ref, (b1.ref, b2.ref))]
    assert result.unmatched == {HS: (b1.ref, b2.ref), SF: (a.ref,)}
    assert [(d.instance, d.ids) for d in result.duplicates] == [(HS, ("2", "3"))]


def test_fuzzy_matching_is_off_unless_enabled() -> None:
    a = deal(SF, "1", name="Acme renewal 2024 platinum")
    b = deal(HS, "2", name="Acme platinum renewal 2024 (EMEA)")
    assert match(by_system([a, b]), {}, KEYS).unmatched == {HS: (b.ref,), SF: (a.ref,)}
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    result = match(by_system([a, b]), {}, fuzzy)
    assert result.methods == {a.ref: LinkMethod.FUZZY, b.ref: LinkMethod.FUZZY}


def test_fuzzy_matching_stays_within_owner_and_close_month_block() -> None:
    a = deal(SF, "1", name="Acme renewal 2024 platinum")
    b = deal(HS, "2", name="Acme platinum renewal 2024 (EMEA)", owner="bob@example.com")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    assert match(by_system([a, b]), {}, fuzzy).methods == {}


def test_fuzzy_tie_is_ambiguous() -> None:
    a = deal(SF, "1", name="Acme renewal platinum")
    b1 = deal(HS, "2", name="Acme renewal platinum EMEA")
    b2 = deal(HS, "3", name="Acme renewal platinum APAC")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    result = match(by_system([a, b1, b2]), {}, fuzzy)
    assert result.methods == {}
    assert [(x.ref, x.candidates) for x in result.ambiguous] == [(a.ref, (b1.ref, b2.ref))]


def test_second_deal_claiming_the_same_entity_is_a_duplicate_and_oldest_is_kept() -> None:
    a = deal(SF, "006A")
    older = deal(HS, "200", external_ids={SF: "006A"}, created=T0)
    newer = deal(HS, "100", external_ids={SF: "006A"}, created=T0 + timedelta(days=1))
    result = match(by_system([a, newer, older]), {}, MatchConfig(keys=()))
    entity = _entity(result, a.ref)
    assert result.entities[entity] == {HS: older.ref, SF: a.ref}  # one deal per instance
    assert [(d.instance, d.ids) for d in result.duplicates] == [(HS, ("100", "200"))]
    assert result.unmatched[HS] == (newer.ref,)


def test_stored_member_wins_over_a_new_external_id_claim() -> None:
    a, kept = deal(SF, "1"), deal(HS, "2")
    intruder = deal(HS, "3", external_ids={SF: "1"}, created=T0 - timedelta(days=9))
    links = {a.ref: "E1", kept.ref: "E1"}
    result = match(by_system([a, kept, intruder]), links, MatchConfig(keys=()))
    assert result.entities["E1"] == {HS: kept.ref, SF: a.ref}
    assert [(d.instance, d.ids) for d in result.duplicates] == [(HS, ("2", "3"))]


def test_same_key_twice_in_one_system_is_reported_as_duplicate() -> None:
    deals = [deal(SF, "1", name="Acme Inc"), deal(SF, "2", name="ACME"), deal(HS, "3", name="x")]
    result = match(by_system(deals), {}, KEYS)
    assert [(d.instance, d.ids) for d in result.duplicates] == [(SF, ("1", "2"))]


def test_a_duplicate_found_by_link_and_by_key_is_reported_once_with_both_reasons() -> None:
    a = deal(SF, "006A")
    older = deal(HS, "200", external_ids={SF: "006A"}, created=T0)
    newer = deal(HS, "100", external_ids={SF: "006A"}, created=T0 + timedelta(days=1))
    result = match(by_system([a, newer, older]), {}, KEYS)
    assert [(d.instance, d.ids) for d in result.duplicates] == [(HS, ("100", "200"))]
    assert "external_id" in result.duplicates[0].reason
    assert "same match key" in result.duplicates[0].reason


def test_three_systems_join_into_one_entity_and_new_ids_are_deterministic() -> None:
    a, b, c = deal(SF, "1"), deal(HS, "2"), deal(PD, "3")
    result = match(by_system([c, b, a]), {}, KEYS)
    assert result.entities == {
        entity_id_for([a.ref, b.ref, c.ref]): {HS: b.ref, PD: c.ref, SF: a.ref}
    }


def test_deleted_deals_keep_their_links_but_never_match_by_key() -> None:
    gone = deal(SF, "1", extra={"deleted": True})
    live = deal(HS, "2")
    result = match(by_system([gone, live]), {gone.ref: "E1", live.ref: "E1"}, KEYS)
    assert result.entities == {"E1": {HS: live.ref, SF: gone.ref}}
    unlinked = match(by_system([gone, live]), {}, KEYS)
    assert unlinked.methods == {} and unlinked.unmatched == {HS: (live.ref,)}


def test_a_deal_archived_in_pipedrive_matches_but_alone_is_not_reported_unmatched() -> None:
    # Only an archive holds it: nothing is missing elsewhere (it is not copied, sync/diff.py).
    archived = deal(PD, "3", name="Old Deal", extra={"archived": True})
    twin, other = deal(SF, "1", name="Globex"), deal(HS, "2", name="Globex")
    result = match(by_system([archived, twin, other]), {}, KEYS)
    assert result.unmatched == {}
    shelved_twin = deal(PD, "4", name="Globex", extra={"archived": True})
    paired = match(by_system([shelved_twin, twin]), {}, KEYS)
    assert list(paired.entities.values()) == [{PD: shelved_twin.ref, SF: twin.ref}]


def test_entities_whose_every_deal_is_deleted_are_counted_dead() -> None:
    """A copy a rollback deleted (its link forgotten) and a deal deleted in both CRMs are no
    deal the systems share; an entity with one live member still is."""
    copy = deal(PD, "9", extra={"deleted": True})
    both = [deal(SF, "1", extra={"deleted": True}), deal(HS, "2", extra={"deleted": True})]
    half = [deal(SF, "3", extra={"deleted": True}), deal(HS, "4")]
    links = {both[0].ref: "E1", both[1].ref: "E1", half[0].ref: "E2", half[1].ref: "E2"}
    result = match(by_system([copy, *both, *half]), links, KEYS)
    assert (len(result.entities), result.dead) == (3, 2)
    assert match(by_system(half), links, KEYS).dead == 0


def test_unmatched_is_reported_per_instance_only_when_other_instances_exist() -> None:
    a = deal(SF, "1")
    assert match(by_system([a]), {}, KEYS).unmatched == {}
    result = match(by_system([a, deal(HS, "2", name="Other")]), {}, KEYS)
    assert set(result.unmatched) == {SF, HS}
    empty_hubspot = match({SF: [a], HS: []}, {}, KEYS)  # a fresh instance: all are missing
    assert empty_hubspot.unmatched == {SF: (a.ref,)}


def _world(seed: int) -> list:
    rng = random.Random(seed)
    deals = []
    for i in range(40):
        name = rng.choice(["Acme", "Globex", "Initech", "Umbrella", "Hooli"]) + f" {i % 7}"
        close = date(2024, rng.randint(1, 3), 1)
        deals.append(deal(SF, f"s{i}", name=name, close=close, created=T0 + timedelta(i)))
        if rng.random() < 0.8:
            ext = {SF: f"s{i}"} if rng.random() < 0.3 else {}
            hs_name = name.upper() + (" Inc" if rng.random() < 0.5 else "")
            deals.append(deal(HS, f"h{i}", name=hs_name, close=close, external_ids=ext))
    return deals


@pytest.mark.parametrize("seed", range(5))
def test_match_result_does_not_depend_on_input_order(seed: int) -> None:
    deals = _world(seed)
    first = match(by_system(deals), {}, KEYS)
    random.Random(seed).shuffle(deals)
    again = match(by_system(deals, [HS, SF]), {}, KEYS)
    assert again == first
    for members in first.entities.values():
        assert len({r.system for r in members.values()}) == len(members)


def test_incremental_match_skips_keys_of_settled_unchanged_deals_only() -> None:
    a, b = deal(SF, "1", name="Acme Inc"), deal(HS, "2", name="Acme Inc")
    twin = deal(SF, "3", name="ACME")  # same key as the settled `a`
    newcomer = deal(PD, "7", name="acme")  # a third instance: joins the entity by key
    links = {a.ref: "E1", b.ref: "E1"}
    full = match(by_system([a, b, twin]), links, KEYS)
    assert [(d.instance, d.ids) for d in full.duplicates] == [(SF, ("1", "3"))]
    quiet = match(by_system([a, b, twin]), links, KEYS, changed=set())
    assert quiet.duplicates == ()  # reported by the run that settled `a`
    edited = match(by_system([a, b, twin]), links, KEYS, changed={a.ref})
    assert [(d.instance, d.ids) for d in edited.duplicates] == [(SF, ("1", "3"))]
    joined = match(by_system([a, b, newcomer]), links, KEYS, changed={newcomer.ref})
    assert joined.entities["E1"] == {HS: b.ref, PD: newcomer.ref, SF: a.ref}


def test_bulk_keys_equal_one_deal_keys_for_every_component_and_missing_part() -> None:
    deals = [
        deal(SF, "1"),
        deal(SF, "2", name="ACME, Inc.", owner="  Ann@Example.com "),
        deal(SF, "3", close=None),
        deal(SF, "4", owner=None),
        deal(SF, "8", owner="   "),
        deal(SF, "5", name="Inc"),
        deal(SF, "6", name="!!!"),  # normalises to nothing: no key
        deal(SF, "7", amount=None, extra={"account": "Acme Ltd"}),
    ]
    components = ("name", "owner_email", "close_month", "close_date", "amount", "account")
    for size in (1, 2, 3):
        for keys in itertools.combinations(components, size):
            assert match_keys(deals, keys) == [match_key(d, keys) for d in deals], keys


def _apart(*refs: Ref) -> frozenset[frozenset[Ref]]:
    return frozenset(frozenset(pair) for pair in itertools.combinations(refs, 2))


def test_deals_a_person_split_are_never_matched_to_each_other_by_any_evidence() -> None:
    sf, hs, pd = Ref(SF, "006A"), Ref(HS, "77"), Ref(PD, "5")
    cases = [  # the same real deal by its key, by an id field, by crmsync's marker
        [deal(SF, "006A"), deal(HS, "77"), deal(PD, "5")],
        [deal(SF, "006A", name="A"), deal(HS, "77", name="B", external_ids={SF: "006A"}),
         deal(PD, "5", name="C", external_ids={HS: "77"})],
        [deal(SF, "006A", link_id="E1"), deal(HS, "77", link_id="E1"), deal(PD, "5", link_id="E1")],
    ]  # fmt: skip
    for deals in cases:
        together = match(by_system(deals), {}, KEYS)
        assert len(together.entities) == 1
        split = match(by_system(deals), {}, KEYS, apart=_apart(sf, hs, pd))
        assert len(split.entities) == 3, deals
        assert not split.new_links


def test_a_split_pair_stays_apart_through_a_third_deal_and_others_still_match() -> None:
    deals = [deal(SF, "006A"), deal(HS, "77"), deal(PD, "5")]
    # SF and HS are not the same deal; PD matches one of them by key, never both.
    result = match(by_system(deals), {}, KEYS, apart=_apart(Ref(SF, "006A"), Ref(HS, "77")))
    groups = sorted(
        sorted(r.system for r in members.values()) for members in result.entities.values()
    )
    assert groups in ([[HS], [PD, SF]], [[HS, PD], [SF]])


def test_a_deal_split_from_the_entity_named_after_it_gets_an_id_of_its_own() -> None:
    """S was alone when crmsync first copied it, so the entity is named after S alone; H joined
    it later and P is crmsync's copy of H (it carries the entity id as its marker). A person
    split S off: the entity stays with H and P, and S, alone again, must not take its id."""
    entity = entity_id_for([Ref(SF, "006A")])
    s, h = deal(SF, "006A", name="Renewal"), deal(HS, "77", name="Renewal")
    p = deal(PD, "5", name="Renewal", link_id=entity)
    stored = {h.ref: entity, p.ref: entity}
    apart = _apart(s.ref, h.ref) | _apart(s.ref, p.ref)
    deals = by_system([s, h, p])

    def kept_apart_under_their_own_ids(result: MatchResult) -> None:
        assert dict(result.entities[entity]) == {HS: h.ref, PD: p.ref}
        [own] = [e for e, members in result.entities.items() if s.ref in members.values()]
        assert own != entity
        assert result.unmatched == {SF: (s.ref,)}

    kept_apart_under_their_own_ids(match(deals, stored, KEYS, apart=apart))
    kept_apart_under_their_own_ids(match(deals, stored, KEYS, apart=apart, retired={entity}))
    # An incremental run may load S alone (the entity is settled): only the record of the
    # split entity's id keeps S from taking it, and so its copies' marker.
    alone = match({SF: [s], HS: [], PD: []}, {}, KEYS, retired={entity})
    assert entity not in alone.entities and alone.unmatched == {SF: (s.ref,)}


def test_copies_of_split_deals_are_no_duplicates_of_them_but_a_deal_entered_again_is() -> None:
    """HubSpot's H and Salesforce's S were split apart; crmsync then copied H into Salesforce
    (S') and S into HubSpot (H'): S and S', H and H' share a key but are known to be two deals.
    A third Salesforce deal of that key, linked to nothing, may be either entered again."""
    s, h = deal(SF, "006A"), deal(HS, "77")
    s_copy, h_copy = deal(SF, "006C", link_id="E-H"), deal(HS, "78", link_id="E-S")
    stored = {h.ref: "E-H", s_copy.ref: "E-H", s.ref: "E-S", h_copy.ref: "E-S"}
    apart = _apart(s.ref, h.ref)
    result = match(by_system([s, h, s_copy, h_copy]), stored, KEYS, apart=apart)
    assert result.duplicates == ()
    assert {frozenset(m.values()) for m in result.entities.values()} == {
        frozenset((h.ref, s_copy.ref)),
        frozenset((s.ref, h_copy.ref)),
    }
    again = deal(SF, "006Z")
    result = match(by_system([s, h, s_copy, h_copy, again]), stored, KEYS, apart=apart)
    assert [(d.instance, d.ids) for d in result.duplicates] == [
        (SF, ("006A", "006Z")),
        (SF, ("006C", "006Z")),
    ]


def test_a_deal_entered_many_times_beside_split_deals_is_two_groups_not_every_pair() -> None:
    """Eight Salesforce deals of one key beside S and the copy of H it was split from: the
    eight go once with S and once with S' (44 pairs were reported, one per pair)."""
    s, h = deal(SF, "006A"), deal(HS, "77")
    s_copy = deal(SF, "006C", link_id="E-H")
    stored = {h.ref: "E-H", s_copy.ref: "E-H", s.ref: "E-S"}
    again = [deal(SF, f"006Z{n}") for n in range(8)]
    result = match(by_system([s, h, s_copy, *again]), stored, KEYS, apart=_apart(s.ref, h.ref))
    eight = tuple(d.id for d in again)
    assert sorted(d.ids for d in result.duplicates) == [("006A", *eight), ("006C", *eight)]


def test_a_deal_entered_twice_is_a_duplicate_though_each_twin_is_linked_elsewhere() -> None:
    """Only a person's split tells same-key deals apart, not their being in two entities: two
    Salesforce twins, each linked to a HubSpot twin of its own (entered twice there too)."""
    sf1, sf2, hs1, hs2 = deal(SF, "1"), deal(SF, "2"), deal(HS, "8"), deal(HS, "9")
    stored = {sf1.ref: "E1", hs1.ref: "E1", sf2.ref: "E2", hs2.ref: "E2"}
    unrelated = _apart(Ref(SF, "5"), Ref(HS, "6"))  # a split of other deals changes nothing
    for apart in (frozenset(), unrelated):
        result = match(by_system([sf1, sf2, hs1, hs2]), stored, KEYS, apart=apart)
        assert [(d.instance, d.ids) for d in result.duplicates] == [
            (HS, ("8", "9")),
            (SF, ("1", "2")),
        ]


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("Deal 10", "Deal 100"),
        ("Acme Renewal Q1", "Acme Renewal Q2"),
        ("Acme Renewal 2025", "Acme Renewal 2026"),
        ("Phase 2 rollout", "Phase 20 rollout"),
        ("Acme Renewal", "Acme Renewal 2026"),
    ],
)
def test_fuzzy_names_whose_numbers_differ_are_never_matched(name: str, other: str) -> None:
    a, b = deal(SF, "1", name=name), deal(HS, "2", name=other)
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    result = match(by_system([a, b]), {}, fuzzy)
    assert result.methods == {}
    assert result.unmatched == {HS: (b.ref,), SF: (a.ref,)}


def test_fuzzy_names_with_the_same_numbers_still_match_despite_a_typo() -> None:
    a = deal(SF, "1", name="Acme Renewall Q1 2025")
    b = deal(HS, "2", name="ACME renewal Q1 2025")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    assert match(by_system([a, b]), {}, fuzzy).methods == {
        a.ref: LinkMethod.FUZZY,
        b.ref: LinkMethod.FUZZY,
    }


def test_fuzzy_match_is_refused_when_the_names_of_the_deals_matched_with_it_disagree() -> None:
    # 'Acme Renewal' scores 100 against both others; Europe and Americas are two deals.
    hub = deal(HS, "1", name="Acme Renewal")
    europe = deal(PD, "2", name="Acme Renewal Europe")
    americas = deal(SF, "3", name="Acme Renewal Americas")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=90)
    result = match(by_system([hub, europe, americas]), {}, fuzzy)
    assert _entity(result, europe.ref) != _entity(result, americas.ref)
    assert [(x.ref, x.candidates) for x in result.ambiguous] == [(hub.ref, (americas.ref,))]


def test_fuzzy_match_joins_a_third_deal_whose_name_agrees_with_the_whole_entity() -> None:
    hub = deal(HS, "1", name="Acme Platinum Renewal")
    pipe = deal(PD, "2", name="ACME platinum renewal (EMEA)")
    sales = deal(SF, "3", name="Acme Renewal Platinum EMEA")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=85)
    result = match(by_system([hub, pipe, sales]), {}, fuzzy)
    assert _entity(result, hub.ref) == _entity(result, pipe.ref) == _entity(result, sales.ref)


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("Phase 1.5", "Phase 15"),
        ("Renewal v1.0", "Renewal v10"),
        ("Ｐｈａｓｅ １．５", "Phase 15"),
        ("バス導入", "パス導入"),  # bus and pass: kana voicing marks are not accents
        ("ガス契約", "カス契約"),
    ],
)
def test_names_that_differ_only_in_a_decimal_dot_or_kana_voicing_get_different_keys(
    name: str, other: str
) -> None:
    a, b = deal(SF, "1", name=name), deal(HS, "2", name=other)
    assert normalize_name(name) != normalize_name(other)
    assert match(by_system([a, b]), {}, KEYS).methods == {}


def test_decimal_dot_comma_and_half_width_kana_still_key_alike() -> None:
    assert normalize_name("Deal 1.5") == normalize_name("Deal 1,5")
    assert normalize_name("ｶﾞｽ契約") == normalize_name("ガス契約")
    assert normalize_name("Café S.A.") == normalize_name("CAFE sa")


def test_key_match_is_refused_when_a_deal_already_matched_with_it_has_another_key() -> None:
    # HubSpot's half of the stored Acme entity was renamed Globex, like an unrelated deal in
    # Pipedrive: that deal must not join the Acme entity through it.
    acme = deal(SF, "1", name="Acme")
    renamed = deal(HS, "2", name="Globex")
    globex = deal(PD, "3", name="Globex")
    stored = {acme.ref: "E1", renamed.ref: "E1"}
    result = match(by_system([acme, renamed, globex]), stored, KEYS)
    assert result.entities["E1"] == {HS: renamed.ref, SF: acme.ref}
    assert result.new_links == {}
    assert [(x.ref, x.candidates) for x in result.ambiguous] == [(renamed.ref, (globex.ref,))]


def test_key_match_joins_a_third_deal_when_the_whole_entity_has_its_key() -> None:
    acme, hub, pipe = deal(SF, "1"), deal(HS, "2"), deal(PD, "3")
    stored = {acme.ref: "E1", hub.ref: "E1"}
    result = match(by_system([acme, hub, pipe]), stored, KEYS)
    assert result.entities["E1"] == {HS: hub.ref, PD: pipe.ref, SF: acme.ref}
    assert result.methods == {pipe.ref: LinkMethod.KEY}


def test_fuzzy_names_never_pick_one_of_the_candidates_a_key_found_ambiguous() -> None:
    # The same name and month twice in HubSpot: the key reports Salesforce's deal ambiguous,
    # and the owner block must not then quietly link it to one of the two.
    a = deal(SF, "1")
    b1, b2 = deal(HS, "2"), deal(HS, "3", owner="bob@example.com")
    fuzzy = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=True, fuzzy_threshold=90)
    result = match(by_system([a, b1, b2]), {}, fuzzy)
    assert result.methods == {}
    assert [(x.ref, x.candidates) for x in result.ambiguous] == [(a.ref, (b1.ref, b2.ref))]


@pytest.mark.parametrize("fuzzy", [False, True])
def test_a_deal_whose_id_field_names_a_missing_deal_is_not_paired_with_another(
    fuzzy: bool,
) -> None:
    # HubSpot's deal is Salesforce's 006OLD (not pulled: deleted, or in another pipeline);
    # 006CLONE, a clone of it in Salesforce, has its name, owner and close month.
    clone = deal(SF, "006CLONE")
    copy = deal(HS, "2", external_ids={SF: "006OLD"})
    config = MatchConfig(keys=("name", "close_month"), fuzzy_enabled=fuzzy)
    result = match(by_system([clone, copy]), {}, config)
    assert result.methods == {}
    assert result.unmatched == {HS: (copy.ref,), SF: (clone.ref,)}


def test_an_id_field_of_an_untrusted_instance_does_not_keep_a_deal_from_its_key_match() -> None:
    a = deal(SF, "1")
    b = deal(HS, "2", external_ids={SF: "006OLD"})
    config = MatchConfig(keys=("name", "close_month"), id_field_systems=frozenset({SF}))
    assert match(by_system([a, b]), {}, config).methods == {
        a.ref: LinkMethod.KEY,
        b.ref: LinkMethod.KEY,
    }
