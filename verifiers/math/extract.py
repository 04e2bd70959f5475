r"""Find the final answer in a model's response.

Markers are tried in order of how explicitly they name the final answer: a GSM8K `####` line,
`\boxed{}` / `\fbox{}`, a phrase such as "the answer is", then math or a number at the end.
Within each marker the last occurrence wins, so an intermediate result earlier in the worked
steps is never taken for the answer; an answer phrase written after the last box restates the
answer after intermediate boxed results, so it wins over them. Text after a chat-template token
(`<|im_end|>`, `<|im_start|>`) or a new speaker (`Human:`) is another turn, not the response.
Every scan is linear in the input (no backtracking regexes over the whole text), so a huge
response costs milliseconds, not seconds.
"""

from __future__ import annotations

import re
from collections import deque

from verifiers.math.plaintext import MATH_NAMES

# The fallbacks only look at the end of a response: the final answer is there, and this bounds
# their cost on huge inputs.
_TAIL_CHARS = 2000
# A marker's answer is at most this long; anything longer is prose, not an answer.
_MAX_SPAN = 1000

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_PHRASE = re.compile(
    r"(?:final\s+answer|answer|correct\s+(?:option|choice))\s*(?:is\s*:?|:|=|would\s+be|should\s+be)|"
    r"final\s+answer\b",
    re.IGNORECASE,
)
_MATH_SEGMENT = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
# A number not glued to a preceding letter (`AZ2A` holds none); `1 000` and `1,000` are one number;
# a unit may follow (`1,000.99m²`).
_NUMBER = re.compile(
    r"(?<![A-Za-z_\d])[-+]?(?:\d{1,3}(?: \d{3})+(?!\d)|\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?(?!\.?\d)"
)
# Several boxes this close together are one answer in parts (`\boxed{1} and \boxed{2}`).
_MAX_BOX_GAP = 60
# At most this many parts: each costs a backward scan of the text, so this keeps the search linear.
_MAX_BOX_PARTS = 10
_COMMAND_OR_MATH = re.compile(r"\\[A-Za-z]+|\$[^$]*\$|\\\(.*?\\\)")
# The end of the model's turn: a chat-template token, or a new speaker at the start of a line.
_TURN_END = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id|end)\|>|\n[ \t]*(?:Human|User):")
# Between the parts of one answer: connectives, names of the next part (`y_2 =`), punctuation.
_BOX_GAP_NAME = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?'*\s*=")
_CONNECTIVE_WORDS = re.compile(r"\b(?:and|or)\b", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?(?:b|strong|em|i|code|span)>", re.IGNORECASE)
_QUOTE = re.compile(r'^\s*\\?["“]|\\?["”]\s*$')
_NUMBER_THEN_WORDS = re.compile(r"\s*(" + _NUMBER.pattern + r")\s+(?:because|since|as|which|so|and|but)\b")
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}")
_SENTENCE_END = re.compile(r"(?<!\d)\.(?!\d)|\.(?=\s|$)")
_HEADING = re.compile(r"^[A-Za-z]{3,}")
_HEDGE_AFTER = re.compile(
    r",?\s*\b(?:I\s+think|I\s+believe|I\s+guess|I\s+hope|hopefully)\b.*$", re.IGNORECASE
)
_CONCLUDING = re.compile(r"^\s*(?:so|thus|therefore|hence|then)\b,?\s*", re.IGNORECASE)
# Words that do not make a line prose: names of mathematics, and the connectives of a list.
_NOT_PROSE = MATH_NAMES | {"and", "or"}
_CLOCK_TIME = re.compile(
    r"\b\d{1,2}:[0-5]\d(?::[0-5]\d)?(?:\s*[AaPp]\.?\s*[Mm]\b\.?)?|\b\d{1,2}\.[0-5]\d\s*[AaPp]\.?\s*[Mm]\b\.?"
)
# What a plain-text expression is made of, read right to left from its last number.
_OPERAND_END = re.compile(r"(?:\d+(?:[.,]\d+)*|[π√²³]|(?<![A-Za-z])[A-Za-z]+)$")
_CONSTANT_AFTER = re.compile(r"(?:\s*\*?\s*(?:π|pi\b)|²|³|\^\d+)*")
_OPERATOR_END = re.compile(r"\s*[+\-−*/^×÷·]\s*$")
_PLAIN_LIST = re.compile(r"[\d\s,.+\-−/π√^*]*")
_MAX_GROUP = 200


def extract_answer(response: str) -> str | None:
    """Return the final answer written in `response`, or None when it states none."""
    turn_end = _TURN_END.search(response)
    if turn_end is not None:
        response = response[: turn_end.start()]
    restated = _phrase_after_last_box(response)
    if restated:
        return restated
    for find in (
        _after_hashes,
        _last_boxed,
        _after_answer_phrase,
        _final_math,
        _bare_last_line,
        _last_number,
        _single_word,
    ):
        found = find(response)
        if found:
            return found
    return None


def gold_answer(gold: str) -> str:
    """The answer part of a gold string: the boxed or `####` part of a full solution, else all of it."""
    joined = _joined_math(gold)
    if joined:
        return joined
    if "####" in gold or any(cmd in gold for cmd in _BOX_COMMANDS) or is_prose(gold):
        found = _after_hashes(gold) or _last_boxed(gold) or extract_answer(gold)
        if found:
            return found
    return clean_answer(gold)


def clean_answer(text: str) -> str:
    r"""Strip what surrounds an answer without being part of it: math delimiters, markdown (bold,
    code ticks, HTML emphasis), a final period."""
    text = _HTML_TAG.sub("", text).strip()
    changed = True
    while changed and text:
        before = text
        text = text.strip().strip("*`").strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
                text = text[len(left) : len(text) - len(right)]
        # A sentence's full stop, but not the last dot of an ellipsis `...`.
        if text.endswith(".") and not text.endswith(".."):
            text = text[:-1]
        text = text.rstrip(",;:").strip()
        changed = text != before
    return text


def _after_hashes(text: str) -> str | None:
    """The rest of the last `####` line (GSM8K style), unless that line is a markdown heading."""
    start = text.rfind("####")
    if start < 0:
        return None
    end = text.find("\n", start)
    line = text[start + 4 : end if end >= 0 else len(text)].lstrip("#")[:_MAX_SPAN]
    answer = clean_answer(line)
    if not answer or (_HEADING.match(answer) and " " in answer):  # a markdown heading, `#### Step 1`
        return None
    return answer


def _last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{...}` (with the boxes just before it, if it is in parts), or None."""
    parts: list[str] = []
    end = len(text)
    while len(parts) < _MAX_BOX_PARTS:
        start = max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)
        if start < 0:
            break
        content, close = _box_at(text, start)
        if content is None or (parts and (close > end or not _joins_boxes(text[close:end]))):
            break
        parts.append(content)
        end = start
    return ", ".join(reversed(parts)) if parts else None


def _joins_boxes(gap: str) -> bool:
    """True for the short text between the parts of one answer: `\\quad \\text{and} \\quad`, `\\) and \\(`.

    A number there, or words without a connective (`\\boxed{1} no no \\boxed{2}`), means the boxes
    are separate results.
    """
    if len(gap) > _MAX_BOX_GAP:
        return False
    rest = re.sub(r"\\text\s*\{([^{}]*)\}", r" \1 ", gap)
    rest = re.sub(r"\\[A-Za-z]+|\\.", " ", _BOX_GAP_NAME.sub(" ", rest))
    if any(c.isdigit() for c in rest):
        return False
    # Words there must come with a connective (`for part (a) and`, `papers and`).
    return _CONNECTIVE_WORDS.search(rest) is not None or not re.search(r"[A-Za-z]", rest)


def _phrase_after_last_box(text: str) -> str | None:
    """The answer of an answer phrase that comes after the last box ("... Final Answer: $10,455$")."""
    last_box = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    phrase = _last_match(_ANSWER_PHRASE, text[last_box:]) if last_box >= 0 else None
    if phrase is None or "\\boxed" in text[last_box + phrase.end() :]:
        return None
    return _after_answer_phrase(text[last_box:])


def _is_joiner(gap: str) -> bool:
    """True for text that only joins math parts: commas, `and`, `or`, spacing."""
    return not _CONNECTIVE_WORDS.sub(" ", gap).strip(" ,;.\n")


def _joined_math(text: str) -> str | None:
    """`$1$ and $2$ and $3$` -> `1, 2, 3`: math segments separated only by commas and connectives."""
    if len(text) > _MAX_SPAN:  # a full worked solution, not a list of parts
        return None
    segments = list(_MATH_SEGMENT.finditer(text))
    if len(segments) < 2:
        return None
    gaps = [text[: segments[0].start()], text[segments[-1].end() :]]
    gaps += [text[a.end() : b.start()] for a, b in zip(segments, segments[1:], strict=False)]
    if not all(_is_joiner(gap) for gap in gaps):
        return None
    return ", ".join(clean_answer(next(g for g in m.groups() if g is not None)) for m in segments)


def _box_at(text: str, start: int) -> tuple[str | None, int]:
    r"""(content, index after it) of the box at `start`: `\boxed{...}` (nested braces) or `\boxed 5`."""
    after_command = start + (6 if text.startswith("\\boxed", start) else 5)
    i = after_command
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        content = _balanced(text, i)
        if content is None:
            return None, 0
        return clean_answer(content), i + len(content) + 2
    # `\boxed 5` form: the argument runs to the next space or math delimiter.
    match = re.match(r"[^\s$]+", text[i : i + _MAX_SPAN])
    if match and i > after_command:
        return clean_answer(match.group(0)), i + match.end()
    return None, 0


def _balanced(text: str, open_index: int) -> str | None:
    """The text inside the brace group opening at `open_index`, or None when it never closes."""
    depth = 0
    for i in range(open_index, len(text)):
        char = text[i]
        if char == "{" and text[i - 1] != "\\":
            depth += 1
        elif char == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : i]
    return None


def _after_answer_phrase(text: str) -> str | None:
    """What follows the last "the answer is" / "Answer:" / "final answer", up to the end of the sentence."""
    last = _last_match(_ANSWER_PHRASE, text)
    if last is None:
        return None
    rest = text[last.end() : last.end() + _MAX_SPAN]
    rest = _QUOTE.sub("", rest.lstrip(" \t*:"), count=1)
    if rest.startswith("\n"):
        rest = rest.lstrip()
    line = rest.split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    if end:
        line = line[: end.start()]
    line = _HEDGE_AFTER.sub("", line)  # "-3π/4, I think": the answer, not the doubt
    # Several math parts joined by "and" (`$12$ and $13$`) are one answer.
    joined = _joined_math(_QUOTE.sub("", line))
    if joined:
        return joined
    # A math segment right after the phrase is the answer; otherwise take the sentence.
    segment = _MATH_SEGMENT.match(rest)
    if segment:
        return clean_answer(next(g for g in segment.groups() if g is not None))
    leading = _NUMBER_THEN_WORDS.match(line)
    if leading:  # "The answer is 7 because 3+4=7": the number, not the justification
        return clean_answer(leading.group(1))
    if is_prose(line):  # "The largest $n$ is 34": the answer is the last math or number in it
        return _last_math_or_number(line)
    return clean_answer(line) or None


def is_prose(text: str) -> bool:
    """True when `text` has words outside its math and `\\text{}`: two or more words of 2+ letters."""
    outside = _COMMAND_OR_MATH.sub(" ", re.sub(r"\\text\s*\{[^{}]*\}", " ", _ENVIRONMENT.sub(" ", text)))
    words = [w for w in re.findall(r"[A-Za-z]{2,}", outside) if w.lower() not in _NOT_PROSE]
    return len(words) >= 2


def _final_math(text: str) -> str | None:
    """The math segment (`$...$`, `\\[...\\]`) ending the response, even over several lines; else
    the last math or number on the last line, when that line has math."""
    tail = text[-_TAIL_CHARS:].rstrip()
    segments = list(_MATH_SEGMENT.finditer(tail))
    if segments and not tail[segments[-1].end() :].strip(" .,;!\n"):
        # Take the run of segments joined by commas and connectives: "are $1$, $2$ and $3$."
        first = len(segments) - 1
        while first > 0 and _is_joiner(tail[segments[first - 1].end() : segments[first].start()]):
            first -= 1
        parts = [clean_answer(next(g for g in m.groups() if g is not None)) for m in segments[first:]]
        return ", ".join(p for p in parts if p) or None
    last_line = tail.rsplit("\n", 1)[-1]
    if _MATH_SEGMENT.search(last_line) is None:
        return None
    return _last_math_or_number(last_line)


def _last_math_or_number(text: str) -> str | None:
    """Whichever comes last in `text`: a math segment or a number."""
    math, number = _last_match(_MATH_SEGMENT, text), _last_match(_NUMBER, text)
    if number is not None and (math is None or number.start() >= math.end()):
        return clean_answer(number.group(0).rstrip(",")) or None
    if math is not None:
        return clean_answer(next(g for g in math.groups() if g is not None)) or None
    return None


def _bare_last_line(text: str) -> str | None:
    """The whole last line when it is short and holds math, not prose (`\\frac{10}{9}`, `x = 3`)."""
    last_line = text[-_TAIL_CHARS:].strip().rsplit("\n", 1)[-1]
    last_line = last_line.rsplit(":", 1)[-1] if re.match(r"[A-Za-z* ]+:", last_line) else last_line
    last_line = _CONCLUDING.sub("", last_line)  # "So √5 ≈ 2.236": the math after "So"
    if (
        len(last_line) > 100
        or is_prose(last_line)
        or "\\boxed" in last_line
        or len(re.findall(r"(?<!\\)\$", last_line)) % 2  # a stray `$` is currency, not math
        or not re.search(r"[\d\\=<>^+\-*/()π√∞]", last_line)  # some mathematics: `b = a`, `a/b`, `∞`
    ):
        return None
    return clean_answer(last_line) or None


def _single_word(text: str) -> str | None:
    """A response that is one word (`yes`, `Monday`) is its own answer."""
    word = text.strip().rstrip(".")
    return word if re.fullmatch(r"[A-Za-z]+", word) else None


def _last_number(text: str) -> str | None:
    """The last number in the end of the response (commas, decimals and `a/b` fractions included),
    grown into the clock time, plain-text expression or tuple it belongs to (`9:15 AM`, `3π/4`,
    `sqrt(5)/2`, `(2, 3)`)."""
    tail = text[-_TAIL_CHARS:]
    found = _last_match(_NUMBER, tail)
    if found is None:
        return None
    clock = _last_match(_CLOCK_TIME, tail)
    if clock is not None and clock.start() <= found.start() < clock.end():
        return clean_answer(clock.group(0))
    # A constant or a power written right after the number belongs to it: `25π`, `3/4 pi`, `5²`.
    end = found.end() + len(_CONSTANT_AFTER.match(tail, found.end()).group(0))
    start, end = _enclosing_tuple(tail, _plain_expression_start(tail, found.start()), end)
    return clean_answer(tail[start:end].rstrip(",")) or None


def _plain_expression_start(text: str, start: int) -> int:
    """Where the plain-text expression ending with the operand at `start` begins: operands
    (numbers, `π`, `√`, single-letter variables, function names and their parenthesised
    arguments) joined by operators or written side by side (`2√3`)."""
    expression_start = start
    while True:
        window = text[max(0, start - 40) : start]
        if window.endswith(")"):
            opening = _opening_paren(text, start - 1)
            if opening is None:
                break
            name = re.search(r"(?<![A-Za-z])[A-Za-z]+$", text[max(0, opening - 12) : opening])
            start = opening - (len(name.group(0)) if name and name.group(0).lower() in MATH_NAMES else 0)
        elif operand := _OPERAND_END.search(window):
            word = operand.group(0)
            if word.isalpha() and len(word) > 1 and word.lower() not in MATH_NAMES:
                break
            start -= len(word)
        else:
            operator = _OPERATOR_END.search(window)
            # `3-5` between bare numbers is a range, not a subtraction.
            if operator is None or re.search(r"\d-$", window):
                break
            start -= len(operator.group(0))
            continue  # an operator counts only with an operand before it
        expression_start = start
    # A minus sign right before the expression, not after an operand, is its sign: `is -3π/4`.
    if re.search(r"(?:^|[\s(=])[-−]$", text[max(0, expression_start - 2) : expression_start]):
        expression_start -= 1
    return expression_start


def _opening_paren(text: str, close_index: int) -> int | None:
    """Index of the `(` matching the `)` at `close_index`, looking back at most `_MAX_GROUP` characters."""
    depth = 0
    for i in range(close_index, max(-1, close_index - _MAX_GROUP), -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def _enclosing_tuple(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen `text[start:end]` to the bracketed list of numbers around it (`(2, 3)`, `[-1, 4)`), if any."""
    close = re.match(r"\s*[)\]]", text[end:])
    opening = max(
        text.rfind("(", max(0, start - _MAX_GROUP), start), text.rfind("[", max(0, start - _MAX_GROUP), start)
    )
    if close is None or opening < 0:
        return start, end
    inside = text[opening + 1 : end]
    if "," not in inside or not _PLAIN_LIST.fullmatch(inside):
        return start, end
    return opening, end + close.end()


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = deque(pattern.finditer(text), maxlen=1)
    return last[0] if last else None
