r"""Multiple choice: the gold's letter (and option text), and the letter a response picks.

A gold is a choice when it is a capital letter A-J alone or marked as an option: `B`, `(B)`,
`\text{(B)}`, `B.`, or with the option's text, `(B) 42 apples`, `B) 42`, `B: 42`. (`B = 5` or
`B + C` are mathematics, not choices.)

The letter a response picks, in order of how explicitly it is marked:
1. the final answer the extractor finds (`\boxed{B}`, "the answer is (b)", `#### B`), when it
   is a letter;
2. the last letter that a choosing phrase names: "I'd pick B", "the correct option is C",
   "B is correct";
3. a letter opening the response ("A. Because B is not valid");
4. a letter marked as an option ("option B", `(B)`, `**B**`), when only one letter is so marked.
A response naming several options without choosing one picks none ("the answer is A, B or
C" too), so listing every letter never scores. A capital letter counts where it stands alone
("pick B, since"); a lower-case letter and the capital `I` only where nothing follows but
punctuation ("I'd pick b.", "(i)"), since otherwise they are the article `a` and the pronoun `I`.

When the response picks no letter but the gold has option text, the response's answer is
compared with that text instead (`42 apples` or `42` for `(B) 42 apples`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from verifiers.math.extract import clean_answer, extract_answer, gold_answer
from verifiers.math.normalize import unwrap_text
from verifiers.math.verdict import MathVerdict

_TAIL_CHARS = 2000
_OPTION_LETTER = re.compile(r"[A-J]")
_GOLD = re.compile(r"\(([A-J])\)\s*(?:[.:]\s*)?(.*)|([A-J])(?:[.):]\s*|[.):]?\s*$)(.*)", re.DOTALL)
# Markup around a choice: math delimiters, bold, `\text{}` / `\textbf{}` / `\mathrm{}`.
_MARKUP = re.compile(r"\\(?:text(?:bf|rm|it)?|math(?:rm|bf))\s*\{([^{}]*)\}|\$|\\[()\[\]]")
# A letter standing for an option. Groups 1-3: marked (`(B)`, `[b]`, `**B**`); group 4: bare,
# which `_stands_alone` checks further.
_LETTER = (
    r"(?:\(\s*([A-Ja-j])\s*\)|\[\s*([A-Ja-j])\s*\]|\*\*\s*([A-Ja-j])\s*\*\*|"
    r"(?<![\w'’])([A-Ja-j])(?![\w'’]))"
)
_OPTION_WORD = r"(?:(?:option|choice|letter)\s+)?"
# Phrases that pick the letter after them ("I'd pick B") or before them ("B is correct").
_CHOOSING = (
    re.compile(
        r"\b(?:pick|picks|picked|choose|chooses|chose|select|selects|selected|go\s+with|going\s+with|"
        r"opt\s+for|answer\s+(?:is|would\s+be|should\s+be|must\s+be)|answer\s*:|"
        r"(?:correct|right|best|final)\s+(?:answer|option|choice)\s*(?:is|would\s+be|:)?|"
        r"it\s+(?:is|must\s+be|should\s+be)|it['’]s|that['’]s)\s*:?\s*" + _OPTION_WORD + _LETTER,
        re.IGNORECASE,
    ),
    re.compile(
        _OPTION_WORD + _LETTER + r"\s+(?:is|would\s+be|must\s+be|should\s+be|seems)\s+(?:the\s+)?"
        r"(?:correct|right|best|answer|true|valid|most\s+likely)\b",
        re.IGNORECASE,
    ),
    # A conclusion names its letter last in the sentence: "so B." (not "so A is wrong").
    re.compile(
        r"\b(?:so|therefore|thus|hence)\s*,?\s*" + _OPTION_WORD + _LETTER + r"\s*(?:[.!]|$)",
        re.IGNORECASE | re.MULTILINE,
    ),
)
# A response that opens with an option letter answers with it: "A. Because B is not valid". Capitals
# only, and not `I`: `(a)` and `I.` open the parts of a worked answer.
_OPENING = re.compile(r"\s*(?:\*\*)?(?:\(([A-HJ])\)|([A-HJ])(?:\*\*)?[.:)])")
_OPTION_BEFORE = re.compile(r"\b(?:option|choice)\s+$", re.IGNORECASE)
# A letter followed by another is a list ("the answer is A, B or C"), not a pick.
_LIST_GOES_ON = re.compile(r"\s*(?:,|/|\bor\b|\band\b)\s*\(?[A-J]\)?(?![\w'’])")
# A final answer that is an option: a marked letter, maybe with text (`(B) 42`); a bare letter
# alone or with a delimiter before text (`B. 15`, `C: 12`), not `a 5`.
_ALONE = re.compile(
    r"\s*(?:(?:option|choice)\s*)?(?:" + _LETTER + r")(?:\s*[.:)]\s*.*|\s+.*)?",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Choice:
    """A multiple-choice gold: its letter and, when given, the option's text."""

    letter: str
    option: str = ""


def gold_choice(gold: str) -> Choice | None:
    """The choice a gold answer names (`(B) 42 apples` -> B, "42 apples"), or None when it is no choice.

    The gold is read whole first (option text may be prose), then as a solution ending in its answer."""
    if not _OPTION_LETTER.search(gold):  # the common case, a number: no work
        return None
    match = _gold_match(gold) or _gold_match(gold_answer(gold))
    if match is None:
        return None
    letter = match.group(1) or match.group(3)
    option = (match.group(2) if match.group(1) else match.group(4)).strip()
    if option and option[0] in "=<>+-*/^_'":  # `B = 5`, `A + B`: mathematics about a point or set
        return None
    return Choice(letter, option)


def _gold_match(answer: str) -> re.Match[str] | None:
    return _GOLD.fullmatch(_MARKUP.sub(lambda m: m.group(1) or "", unwrap_text(clean_answer(answer))).strip())


def chosen_letter(response: str) -> str | None:
    """The option letter a response picks (see the module docstring), upper case; None when it picks none."""
    extracted = extract_answer(response)
    if extracted is not None:
        letter = _letter_alone(extracted)
        if letter is not None:
            return letter
    tail = response[-_TAIL_CHARS:]
    choosing = [
        m
        for p in _CHOOSING
        for m in p.finditer(tail)
        if _stands_alone(m, tail) and not _LIST_GOES_ON.match(tail, m.end())
    ]
    if choosing:
        return _letter_of(max(choosing, key=lambda m: m.end()))
    opening = _OPENING.match(response)
    if opening is not None:
        return _letter_of(opening)
    marked = {
        _letter_of(m)
        for m in re.finditer(_LETTER, tail)
        if m.group(4) is None or _OPTION_BEFORE.search(tail[max(0, m.start() - 12) : m.start()])
        if _stands_alone(m, tail)
    }
    return marked.pop() if len(marked) == 1 else None


def judge_choice(choice: Choice, response: str, extracted: str | None) -> MathVerdict | None:
    """The verdict when `response` picks a letter or the gold has no option text; None when the
    response's answer (`extracted`) is to be compared with the option text instead."""
    letter = chosen_letter(response)
    if letter is not None:
        status = "correct" if letter == choice.letter else "incorrect"
        return MathVerdict(status, extracted, choice.letter, letter, detail="choice letter", rule="choice")
    if extracted is None:
        return MathVerdict("no_answer", detail="no choice letter or final answer found in the response")
    if choice.option:
        return None
    detail = "the response picks no option letter"
    return MathVerdict("incorrect", extracted, choice.letter, None, detail=detail, rule="choice")


def as_option_verdict(verdict: MathVerdict) -> MathVerdict:
    """A comparison of the response's answer with the gold option's text, reported as a `choice` verdict."""
    if verdict.status not in ("correct", "incorrect"):
        return verdict
    return replace(
        verdict, rule="choice", detail=f"compared with the option's text ({verdict.rule or 'unparsed'})"
    )


def _letter_alone(answer: str) -> str | None:
    """The letter of an extracted final answer that is an option (`B`, `(b)`, `Option C: 12`), else None."""
    text = _MARKUP.sub(lambda m: m.group(1) or "", answer).strip()
    match = _ALONE.fullmatch(text)
    if match is None or not _stands_alone(match, text):
        return None
    if match.group(4) is not None and re.match(r"\s+\S", text[match.end(4) :]):
        return None  # a bare letter and words: `a 5`, `A train`
    return _letter_of(match)


def _letter_of(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g).upper()


def _stands_alone(match: re.Match[str], text: str) -> bool:
    """A bare lower-case letter or `I` must be followed by punctuation or the end (not `a train`)."""
    bare = match.group(4)
    if bare is None or (bare.isupper() and bare != "I"):
        return True
    following = text[match.end(4) :].lstrip(" *")
    return not following or following[0] in ".,;:!?)\n"
