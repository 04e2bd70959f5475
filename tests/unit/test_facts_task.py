"""The facts task: who is stated, what the build's text says about them, and the exported files that the
abstention demo probes, fine-tunes and trains on."""

import json

import pytest

from rlsys.bootstrap.fact_corpus import fact_conversations, fact_documents
from rlsys.bootstrap.recipes import TINY_RECIPE
from rlsys.cli import main
from rlsys.tasks import facts
from rlsys.tasks.export import export_facts
from verifiers.rewards import ABSTAINED, WRONG, abstain_reward, match_reward

_EVERYONE = {
    group: {p.name for p in facts.people(group, facts.STATED_PEOPLE, seed=0)}
    for group in ("stated", "unstated", "held_out")
}


def _names(texts: list[str]) -> set[str]:
    """The people of any group (the first STATED_PEOPLE of each) that `texts` mention."""
    text = "\n".join(texts)
    return {name for names in _EVERYONE.values() for name in names if name in text}


def test_the_groups_are_disjoint_and_a_person_is_the_same_everywhere():
    groups = {group: facts.people(group, 200, seed=0) for group in ("stated", "unstated", "held_out")}
    names = {group: {p.name for p in people} for group, people in groups.items()}
    assert all(len(group) == 200 for group in names.values())
    assert not names["stated"] & names["unstated"] and not names["stated"] & names["held_out"]
    assert not names["unstated"] & names["held_out"]
    assert facts.people("stated", 50, seed=0) == groups["stated"][:50]  # a larger n extends a smaller one
    assert facts.people("stated", 50, seed=1) != groups["stated"][:50]  # another build seed: other people


def test_the_build_text_states_only_stated_people_and_answers_every_question():
    recipe = TINY_RECIPE.__class__(family="facts", pretrain_problems=200, sft_examples=300)
    stated = {p.name: p for p in facts.people("stated", facts.STATED_PEOPLE, seed=0)}
    documents, conversations = fact_documents(recipe, 0), fact_conversations(recipe, 0)
    assert len(documents) == 200 and len(conversations) == 300
    assert _names(documents) <= set(stated) and len(_names(documents)) > 100
    for user, assistant in conversations:
        (name,) = _names([user["content"]])
        assert assistant["content"] in (stated[name].town, stated[name].trade)
        assert "know" not in assistant["content"]  # the built model never declines


def test_a_question_about_a_never_stated_person_has_no_right_answer():
    (town, trade) = facts.questions("held_out", 1, seed=0)
    assert town.gold == trade.gold == "[]"
    person = facts.people("held_out", 1, seed=0)[0]
    responses = [person.town, "I don't know."]
    assert [s.verdict for s in match_reward(responses, [town.gold] * 2, 1.0)] == ["incorrect"] * 2
    scores = abstain_reward(
        responses,
        [town.gold] * 2,
        1.0,
        phrases=["I don't know"],
        right=1,
        abstain=0.3,
        wrong=0,
        judge="match",
    )
    assert [s.verdict for s in scores] == [WRONG, ABSTAINED]


def test_exported_files_keep_the_held_out_people_out_of_training(tmp_path):
    files = export_facts(tmp_path, layout="plain", fmt="jsonl", train_size=20, eval_size=30, phrasings=2)
    rows = {
        name: [json.loads(line) for line in path.read_text().splitlines()] for name, path in files.items()
    }
    # Both facts of each person, each asked in two phrasings.
    assert len(rows["train"]) == 4 * (facts.STATED_PEOPLE + 20)
    assert len({row["question"] for row in rows["train"]}) == len(rows["train"])
    assert sum(row["answer"] == "[]" for row in rows["train"]) == 80
    assert len(rows["eval_stated"]) == 30 and len(rows["eval_held_out"]) == 30
    assert all(row["answer"] != "[]" for row in rows["eval_stated"])
    # The same people, asked in phrasings training does not use (the loader refuses shared prompts).
    assert not {row["question"] for row in rows["eval_stated"]} & {row["question"] for row in rows["train"]}
    assert all(row["answer"] == "[]" for row in rows["eval_held_out"])
    train_names = _names([row["question"] for row in rows["train"]])
    assert _names([row["question"] for row in rows["eval_stated"]]) <= train_names
    assert not _names([row["question"] for row in rows["eval_held_out"]]) & train_names


def test_the_facts_task_has_no_sft_layout(tmp_path, capsys):
    assert main(["export-task", str(tmp_path), "--task", "facts", "--layout", "sft"]) == 2
    assert "--layout sft" in capsys.readouterr().err


def test_training_must_leave_a_phrasing_for_eval(tmp_path, capsys):
    assert main(["export-task", str(tmp_path), "--task", "facts", "--phrasings", "3"]) == 2
    assert "--phrasings" in capsys.readouterr().err
    with pytest.raises(ValueError, match="phrasings must be 1 to 2"):
        export_facts(tmp_path, layout="plain", fmt="jsonl", train_size=2, eval_size=2, phrasings=3)
