"""Pure parts of the sandbox: the value codec at the trust boundary and the splitting of tests."""

import math

import pytest

from verifiers.code.harness import CodecError, decode, encode
from verifiers.code.testplan import prepare


def no_refs(ref, is_callable):
    raise AssertionError("no handle expected")


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        255,
        -(2**70),
        1.5,
        -0.0,
        "é\n",
        "\ud800",
        b"\x00",
        [1, (2, 3)],
        {"a": {1, 2}},
        frozenset({1}),
        {(1, 2): None},
        1j,
        ((),),
        [[[]]],
    ],
)
def test_round_trip_keeps_value_and_type(value):
    back = decode(encode(value), no_refs)
    assert back == value and type(back) is type(value)
    assert repr(back) == repr(value)


def test_special_floats():
    assert decode(encode(float("-inf")), no_refs) == float("-inf")
    assert math.isnan(decode(encode(float("nan")), no_refs))


def test_subclasses_are_sent_as_plain_values():
    class Sneaky(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    back = decode(encode([Sneaky(3)]), no_refs)
    assert type(back[0]) is int and back != [4]


def test_unencodable_values_become_handles_or_errors():
    refs: dict[int, object] = {}
    obj = object()
    assert decode(encode([obj], refs), lambda ref, is_callable: (ref, is_callable)) == [(0, False)]
    assert refs[0] is obj
    with pytest.raises(CodecError):
        encode(obj)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"N!",
        b"x",
        b"i\x00\x00\x00\x09\x01",
        b"l\xff\xff\xff\xffN",
        b"d\x00\x00\x00\x01l\x00\x00\x00\x00N",
        b"f\x00\x00\x00\x03zzz",
        b"s\x00\x00\x00\x01\xff",
        b"cNN",
        b"l\x00\x00\x00\x01" * 300 + b"N",
    ],
)
def test_malformed_data_is_rejected(data):
    with pytest.raises(CodecError):
        decode(data, no_refs)


def test_plan_splits_check_body_into_tests():
    source = (
        "def check(candidate):\n    x = 1\n    assert candidate(x) == 2\n    for i in range(2):\n"
        "        assert candidate(i)\n    print(x)\n"
    )
    prepared = prepare(source, "f")
    assert prepared.units == (("assert candidate(x) == 2", 3), ("for i in range(2): assert candidate(i)", 4))
    assert "__record__(1, None)" in prepared.source and not prepared.whole_module


def test_plan_without_asserts_is_one_test():
    prepared = prepare("check(f)\n", None)
    assert prepared.whole_module and prepared.units == (("tests run to completion", 1),)


def test_plan_rejects_malformed_tests():
    with pytest.raises(ValueError, match="check"):
        prepare("assert 1", "f")
    with pytest.raises(SyntaxError):
        prepare("assert (", None)
