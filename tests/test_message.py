"""The wire format: parsing, formatting, and the round trip (property tests)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedchat.wire.message import (
    Message,
    ParseError,
    escape_tag_value,
    parse,
    unescape_tag_value,
    valid_tag_key,
)


def test_parse_full_line():
    msg = parse(b"@time=2026-01-01T00:00:00.000Z;+draft/x=a\\sb :nick!u@h PRIVMSG #c :hi there\r\n")
    assert msg.tags == {"time": "2026-01-01T00:00:00.000Z", "+draft/x": "a b"}
    assert msg.source == "nick!u@h"
    assert msg.nick == "nick"
    assert msg.command == "PRIVMSG"
    assert msg.params == ("#c", "hi there")


def test_parse_lowercase_command_and_extra_spaces():
    assert parse("privmsg   #c   :x").params == ("#c", "x")
    assert parse("privmsg #c :x").command == "PRIVMSG"


def test_trailing_may_be_empty_or_contain_colons():
    assert parse("TOPIC #c :").params == ("#c", "")
    assert parse("PRIVMSG #c ::) smile").params == ("#c", ":) smile")


def test_parse_lf_only():
    assert parse(b"PING x\n").params == ("x",)


@pytest.mark.parametrize("line", ["", "   ", "@a=b", ":src", ":src ", "@a :src", "PRIVMSG #a :\0"])
def test_lines_without_command_are_errors(line):
    with pytest.raises(ParseError):
        parse(line)


@pytest.mark.parametrize("line", ["TOPIC #c :in\rnocent", "NICK a\rb", "PRIVMSG #c :a\nb",
                                  "@+x\rERROR PRIVMSG #c :hello", "AWAY :x\r\r\n", "USER u 0 * :\0"])
def test_cr_lf_and_nul_inside_a_line_are_refused(line):
    with pytest.raises(ParseError):
        parse(line)


def test_one_line_ending_is_stripped():
    assert parse("PING x\r\n").params == ("x",)
    assert parse(b"PING x\n").params == ("x",)


@pytest.mark.parametrize("key", ["a", "+a", "time", "+draft/react", "+example.com/x-y",
                                 "ex-1.b-2.c/K9", "msgid"])
def test_valid_tag_keys(key):
    assert valid_tag_key(key)


@pytest.mark.parametrize("key", ["", "+", "+x\r", "a b", "+bad!key", "a/", "/a", "+.com/x",
                                 "a..b/c", "é", "+a/b/c", "a=b", "a_b"])
def test_invalid_tag_keys(key):
    assert not valid_tag_key(key)


def test_invalid_tag_keys_are_dropped_when_parsing():
    message = parse("@+ok=1;+bad!key=2;=empty;+vendor.example/good;a_b=3 PRIVMSG #c :hi")
    assert message.tags == {"+ok": "1", "+vendor.example/good": ""}
    assert message.params == ("#c", "hi")


def test_invalid_utf8_raises_value_error():
    with pytest.raises(UnicodeDecodeError):
        parse(b"PRIVMSG #c :\xff")


def test_format_uses_trailing_only_when_needed():
    assert Message("JOIN", ("#c",)).to_bytes() == b"JOIN #c\r\n"
    assert Message("PRIVMSG", ("#c", "two words")).to_bytes() == b"PRIVMSG #c :two words\r\n"
    assert Message("PRIVMSG", ("#c", ":x")).to_bytes() == b"PRIVMSG #c ::x\r\n"
    assert Message("TOPIC", ("#c", "")).to_bytes() == b"TOPIC #c :\r\n"


def test_format_refuses_line_breaks_and_bad_middles():
    with pytest.raises(ValueError):
        Message("PRIVMSG", ("#c", "a\r\nQUIT")).to_bytes()
    with pytest.raises(ValueError):
        Message("PRIVMSG", ("two words", "x")).to_bytes()


def test_tag_escaping():
    raw = "a;b c\\d\re\nf"
    assert escape_tag_value(raw) == "a\\:b\\sc\\\\d\\re\\nf"
    assert unescape_tag_value(escape_tag_value(raw)) == raw
    assert unescape_tag_value("ab\\") == "ab"
    assert unescape_tag_value("a\\bc") == "abc"


_word = st.text(
    st.characters(blacklist_characters=" \r\n\0:", blacklist_categories=("Cs",)), min_size=1
)
_middle = st.builds(lambda first, rest: first + rest,
                    st.text(st.characters(blacklist_characters=" \r\n\0:",
                                          blacklist_categories=("Cs",)), min_size=1, max_size=1),
                    st.text(st.characters(blacklist_characters=" \r\n\0",
                                          blacklist_categories=("Cs",)), max_size=10))
_trailing = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)))
_command = st.one_of(
    st.from_regex(r"[A-Z]{1,10}", fullmatch=True), st.from_regex(r"[0-9]{3}", fullmatch=True)
)
_tag_key = st.from_regex(r"\+?([a-z0-9-]{1,5}(\.[a-z0-9-]{1,5}){0,2}/)?[A-Za-z0-9-]{1,10}",
                         fullmatch=True)
_tag_value = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


@st.composite
def messages(draw):
    middles = draw(st.lists(_middle, max_size=5))
    last = draw(st.one_of(st.none(), _trailing))
    params = tuple(middles) + (() if last is None else (last,))
    source = draw(st.one_of(st.none(), _word))
    tags = draw(st.dictionaries(_tag_key, _tag_value, max_size=4))
    return Message(draw(_command), params, source, tags)


@given(messages())
def test_round_trip(message):
    assert parse(message.to_bytes()) == message


@given(st.binary(max_size=600))
def test_parse_never_fails_unexpectedly(data):
    try:
        parse(data)
    except (ParseError, UnicodeDecodeError):
        pass
