"""Training text of the `facts` family (`rlsys.tasks.facts`): sentences stating the stated people's facts to
pretrain on, questions about them answered for SFT.

No text mentions a person outside the stated group, and no SFT answer declines: the built model answers
every question, and about a person it never read of it makes one up (a town or trade it knows), the
hallucination that probing, abstention SFT and the `abstain` reward are there to remove.
"""

from __future__ import annotations

import random

from rlsys.bootstrap.recipes import Recipe
from rlsys.tasks import facts

Conversation = list[dict[str, str]]
STATEMENTS_PER_DOCUMENT = 8


def fact_documents(recipe: Recipe, seed: int) -> list[str]:
    """``recipe.pretrain_problems`` documents of a few sentences each, every sentence one stated person's
    facts in one of several phrasings."""
    rng = random.Random(f"fact-documents:{seed}")
    stated = facts.people("stated", facts.STATED_PEOPLE, seed)
    return [
        " ".join(facts.statement(rng.choice(stated), rng) for _ in range(STATEMENTS_PER_DOCUMENT))
        for _ in range(recipe.pretrain_problems)
    ]


def fact_conversations(recipe: Recipe, seed: int) -> list[Conversation]:
    """``recipe.sft_examples`` questions about stated people, answered with the town or trade alone."""
    rng = random.Random(f"fact-conversations:{seed}")
    stated = facts.people("stated", facts.STATED_PEOPLE, seed)
    conversations = []
    for _ in range(recipe.sft_examples):
        question = rng.choice(facts.questions_about(rng.choice(stated), True, rng))
        conversations.append(
            [*facts.chat_messages(question), {"role": "assistant", "content": question.answer}]
        )
    return conversations
