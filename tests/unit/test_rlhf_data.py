"""Ranking and pairwise preference files: parsing, tie expansion, and errors that name line, field and fix."""

import json

import pytest

from rlsys.rlhf.data import (
    PreferenceDataError,
    Ranking,
    load_pairs,
    load_rankings,
    preference_pairs,
    ranks_from_order,
    write_rankings,
)


def _write(tmp_path, records, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_ranks_from_order_with_ties():
    assert ranks_from_order([1, [0, 3], 2], 4) == (1, 0, 2, 1)
    assert ranks_from_order([2, 1, 0], 3) == (2, 1, 0)


@pytest.mark.parametrize(
    "order, message",
    [
        ([0, 0, 1], "index 0 appears twice"),
        ([0, 1], "indices [2] are missing"),
        ([0, 1, 5], "index 5 is out of range 0..2"),
        ([0, [], 1, 2], "empty tie group"),
        ([0, "1", 2], "'1' is not a response index"),
    ],
)
def test_ranks_from_order_rejects_non_permutations(order, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ranks_from_order(order, 3)


def test_preference_pairs_skip_ties():
    assert preference_pairs([0, 1, 2]) == [(0, 1), (0, 2), (1, 2)]
    assert preference_pairs([0, 1, 1]) == [(0, 1), (0, 2)]
    assert preference_pairs([0, 0]) == []
    assert len(preference_pairs(range(5))) == 10  # k(k-1)/2 for the classic k=5


def test_load_rankings_and_round_trip(tmp_path):
    path = _write(
        tmp_path,
        [
            {
                "prompt": "What is 2 + 3?",
                "responses": ["#### 5", "2 + 3 = 5\n#### 5", "#### 6"],
                "ranking": [1, 0, 2],
            },
            {
                "id": "q2",
                "prompt": [{"role": "user", "content": "Add 1 and 1."}],
                "responses": ["a", "b", "c", "d"],
                "ranking": [[0, 2], 1, 3],
            },
        ],
    )
    first, second = load_rankings(path)
    assert first.prompt == ({"role": "user", "content": "What is 2 + 3?"},)
    assert first.ranks == (1, 0, 2)
    assert second.ranks == (0, 1, 0, 2) and second.id == "q2"
    again = tmp_path / "again.jsonl"
    write_rankings([first, second], again)
    assert load_rankings(again) == [first, second]


def test_ranking_errors_name_line_field_and_fix(tmp_path):
    path = _write(
        tmp_path,
        [
            {"prompt": "p", "responses": ["a", "b", "c"], "ranking": [0, 1, 2]},  # fine
            {"prompt": "p", "responses": ["a", "b", "c"], "ranking": [0, 0, 1]},
            {"responses": ["a", "b"], "ranking": [0, 1]},
            "{not json",
            {"prompt": "p", "responses": ["a", 3], "ranking": [0, 1]},
            {"prompt": "p", "responses": ["a"], "ranking": [0]},
        ],
    )
    with pytest.raises(PreferenceDataError) as caught:
        load_rankings(path)
    message = str(caught.value)
    assert (
        f"{path}:2: field 'ranking': not a permutation of 0..2 "
        "(index 0 appears twice; indices [2] are missing)" in message
    )
    assert "inner list like [0, [1, 2]]" in message
    assert f"{path}:3: field 'prompt': missing" in message
    assert f"{path}:4: not valid JSON" in message
    assert f"{path}:5: field 'responses': item 1 is int, expected a string" in message
    assert f"{path}:6: field 'responses': give a list of at least 2" in message
    assert ":1:" not in message


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(PreferenceDataError, match="no such file"):
        load_rankings(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PreferenceDataError, match="no records"):
        load_rankings(tmp_path / "empty.jsonl")


def test_load_pairs_strings_and_conversations(tmp_path):
    convo = [{"role": "user", "content": "Hi"}]
    path = _write(
        tmp_path,
        [
            {"prompt": "Tell a joke", "chosen": "A good one", "rejected": "the the the"},
            {
                "chosen": [*convo, {"role": "assistant", "content": "Hello!"}],
                "rejected": [*convo, {"role": "assistant", "content": "no"}],
            },
        ],
    )
    first, second = load_pairs(path)
    assert first == Ranking(
        ({"role": "user", "content": "Tell a joke"},), ("A good one", "the the the"), (0, 1)
    )
    assert second.prompt == tuple(convo) and second.responses == ("Hello!", "no") and second.ranks == (0, 1)


def test_pair_errors(tmp_path):
    convo = [{"role": "user", "content": "Hi"}]
    path = _write(
        tmp_path,
        [
            {"chosen": "a", "rejected": "b"},
            {"prompt": "p", "chosen": "a"},
            {
                "chosen": [*convo, {"role": "assistant", "content": "x"}],
                "rejected": [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "y"}],
            },
            {"chosen": [{"role": "user", "content": "Hi"}], "rejected": [{"role": "user", "content": "Hi"}]},
        ],
    )
    with pytest.raises(PreferenceDataError) as caught:
        load_pairs(path)
    message = str(caught.value)
    assert ":1: field 'prompt': missing; string responses need the prompt" in message
    assert ":2: field 'rejected': missing" in message
    assert ":3: fields 'chosen'/'rejected': the turns before the final assistant reply differ" in message
    assert (
        ":4: field 'chosen': a conversation needs at least one prompt turn and ends with the assistant"
        in message
    )
