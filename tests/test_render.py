"""The message view's HTML, rendered as plain Python (qtclient.render imports nothing from Qt)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from qtclient.render import (
    ERROR_COLOUR,
    EVENT_COLOUR,
    MENTION_BACKGROUND,
    NICK_COLOURS,
    TIME_COLOUR,
    line_html,
    linkify,
    nick_colour,
    strip_formatting,
)
from twistedchat.client.session import Kind, Line

NOON = datetime(2026, 1, 1, 12, 5)
ROOT = Path(__file__).resolve().parents[1]


def line(kind: Kind = Kind.MESSAGE, text: str = "hello", nick: str = "bob", **kw) -> Line:
    return Line(NOON, kind, text, nick, **kw)


def run_python(code: str, seed: str = "0") -> str:
    """``code``'s output in a fresh interpreter (its own hash salt, no Qt imported by conftest)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
    return result.stdout


def test_render_module_imports_no_qt():
    code = ("import sys, qtclient.render; "
            "print(sorted(m for m in sys.modules if m.startswith(('PyQt', 'qtpy', 'PySide'))))")
    assert run_python(code).strip() == "[]"


# -- nick colours ----------------------------------------------------------------------------


NICKS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"]


@pytest.mark.parametrize("seed", ["1", "2"])
def test_nick_colour_is_the_same_in_another_process(seed):
    """A salted ``hash()`` would give each run of the client different colours."""
    code = f"from qtclient.render import nick_colour; print(*map(nick_colour, {NICKS!r}))"
    assert run_python(code, seed).split() == [nick_colour(nick) for nick in NICKS]


def test_nick_colours_ignore_case_come_from_the_palette_and_differ_between_nicks():
    assert nick_colour("Bob") == nick_colour("bob") == nick_colour("BOB")
    colours = {nick_colour(nick) for nick in NICKS}
    assert colours <= set(NICK_COLOURS)
    assert len(colours) >= 4


# -- links and escaping ----------------------------------------------------------------------


def test_linkify_escapes_html():
    assert linkify('<script>alert("x")</script> & co') == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co")


def test_linkify_makes_links_and_escapes_the_address_and_the_text_around_it():
    assert linkify("<i>see</i> https://example.org/a?b=1&c=2 & more") == (
        '&lt;i&gt;see&lt;/i&gt; <a href="https://example.org/a?b=1&amp;c=2">'
        "https://example.org/a?b=1&amp;c=2</a> &amp; more")


@pytest.mark.parametrize(("text", "url", "after"), [
    ("go to http://example.org.", "http://example.org", "."),
    ("(http://example.org/x)", "http://example.org/x", ")"),
    ("really? https://example.org/?!", "https://example.org/", "?!"),
    ('"ftp://files.example.org/a",', "ftp://files.example.org/a", "&quot;,"),
])
def test_trailing_punctuation_is_not_part_of_the_link(text, url, after):
    html = linkify(text)
    assert f'<a href="{url}">{url}</a>{after}' in html
    assert html.endswith(after)


def test_only_web_addresses_become_links_and_www_gets_a_scheme_in_the_href():
    assert linkify("www.example.org") == '<a href="http://www.example.org">www.example.org</a>'
    assert "<a " not in linkify("javascript:alert(1) mailto:a@b.c example.org")
    assert linkify("a http://one.example b https://two.example").count("<a href=") == 2


def test_quote_cannot_break_out_of_the_href():
    html = linkify('http://example.org/"onmouseover="alert(1)')
    assert html.startswith('<a href="http://example.org/">http://example.org/</a>')
    assert 'onmouseover="' not in html and "&quot;onmouseover=&quot;" in html


def test_strip_formatting_removes_mirc_codes_but_keeps_commas():
    assert strip_formatting("\x02bold\x02 \x1ditalic\x1d \x1funder\x0f") == "bold italic under"
    assert strip_formatting("\x0304,12red on blue\x03 plain") == "red on blue plain"
    assert strip_formatting("\x034,x") == ",x"
    assert strip_formatting("\x03123") == "3"


# -- whole lines -----------------------------------------------------------------------------


def test_message_line_has_time_coloured_escaped_nick_and_text():
    html = line_html(line(text="a < b", nick="bob"))
    assert "12:05" in html
    assert f'<b style="color:{nick_colour("bob")}">&lt;bob&gt;</b> a &lt; b' in html
    assert MENTION_BACKGROUND not in html


def test_message_containing_script_is_escaped_in_the_line():
    html = line_html(line(text="<script>alert(1)</script> & <b>", nick="<img src=x>"))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html.split("</b>", 1)[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html
    assert "&lt;&lt;img src=x&gt;&gt;" in html


def test_links_in_a_line_and_formatting_drawn():
    html = line_html(line(text="\x02see\x02 https://example.org."))
    assert ('<span style="font-weight:bold">see</span> '
            '<a href="https://example.org">https://example.org</a>.') in html
    assert "\x02" not in html


def test_notice_and_action_lines():
    assert '-bob-</b> psst' in line_html(line(Kind.NOTICE, "psst"))
    action = line_html(line(Kind.ACTION, "waves"))
    assert action.startswith(f'<span style="color:{TIME_COLOUR}">12:05</span>')
    assert f'<i><span style="color:{nick_colour("bob")}">* bob</span> waves</i>' in action


@pytest.mark.parametrize(("kind", "mark"), [
    (Kind.JOIN, "→"), (Kind.PART, "←"), (Kind.QUIT, "←"), (Kind.KICK, "←"), (Kind.NICK, "•"),
    (Kind.TOPIC, "•"), (Kind.MODE, "•"), (Kind.INFO, "•"),
])
def test_events_are_quiet(kind, mark):
    html = line_html(line(kind, "bob joined #c"))
    assert f'<span style="color:{EVENT_COLOUR}">{mark} bob joined #c</span>' in html
    assert "<b" not in html and nick_colour("bob") not in html


def test_errors_stand_out():
    html = line_html(line(Kind.ERROR, "Not connected & <sad>"))
    assert f'<span style="color:{ERROR_COLOUR}">! Not connected &amp; &lt;sad&gt;</span>' in html


def test_mention_gets_the_highlight_background_around_the_whole_line():
    html = line_html(line(text="me: hi", mention=True))
    assert html.startswith(f'<span style="background-color:{MENTION_BACKGROUND}">')
    assert html.endswith("</span>") and "me: hi" in html


def test_a_link_keeps_its_own_closing_parenthesis_but_not_the_sentence_one():
    html = linkify("see https://en.wikipedia.org/wiki/Foo_(bar). and (https://x.org/a)")
    assert '<a href="https://en.wikipedia.org/wiki/Foo_(bar)">' in html
    assert '<a href="https://x.org/a">https://x.org/a</a>)' in html


def test_mirc_styles_are_drawn_with_escaped_text_and_links_inside():
    from qtclient.render import formatted

    html = formatted("\x02\x1d\x1f\x1e<b>\x0f \x0304,01red https://x.org\x03 \x16rev\x16 \x11m")
    assert ('<span style="font-weight:bold;font-style:italic;'
            'text-decoration:underline line-through">&lt;b&gt;</span>') in html
    assert ('<span style="color:#ff0000;background-color:#000000">red '
            '<a href="https://x.org">https://x.org</a></span>') in html
    assert '<span style="color:#ffffff;background-color:#000000">rev</span>' in html
    assert '<span style="font-family:monospace">m</span>' in html
    assert formatted("plain & simple") == "plain &amp; simple"


def test_dark_colours_differ_and_the_time_format_is_used():
    from qtclient.render import DARK

    html = line_html(line(text="hi"), DARK, "%H:%M:%S")
    assert "12:05:00" in html and DARK.time in html and nick_colour("bob", DARK) in html


def test_mirc_colours_without_a_background_stay_readable_on_either_theme():
    from qtclient.render import DARK, LIGHT, formatted

    assert formatted("\x0300white", LIGHT) == '<span style="color:#5d6d7e">white</span>'
    assert formatted("\x0302navy", DARK) == '<span style="color:#7f9fff">navy</span>'
    assert formatted("\x0300,01white on black", LIGHT) == (
        '<span style="color:#ffffff;background-color:#000000">white on black</span>')


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_line_colour_is_readable_on_its_background(theme):
    """WCAG contrast: 4.5 for nicks, errors, links and mIRC colours; 3 for quiet times and events."""
    from qtclient.render import DARK, LIGHT

    colours, base = (LIGHT, "#ffffff") if theme == "light" else (DARK, "#1b1e20")
    for colour in (*colours.nicks, *colours.mirc, colours.error, colours.link):
        assert _contrast(colour, base) >= 4.5, colour
    for colour in (colours.time, colours.event):
        assert _contrast(colour, base) >= 3, colour
