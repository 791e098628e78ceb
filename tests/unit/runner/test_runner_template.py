"""Placeholder rendering matches the reference controller's rules (§3.3)."""

from __future__ import annotations

from jangar.runner.template import render

CONTEXT = {
    "agentRun": {"name": "run-1"},
    "parameters": {"stage": "implement", "count": 3, "flags": {"fast": True}, "empty": None},
    "implementation": {"text": "body with {{parameters.stage}} inside"},
    "steps": ["a", "b"],
}


def test_dotted_paths_with_and_without_spaces() -> None:
    assert render("{{agentRun.name}}-{{ parameters.stage }}", CONTEXT) == "run-1-implement"


def test_missing_and_null_values_render_empty() -> None:
    assert render("[{{ nope.nothing }}][{{parameters.empty}}][{{}}]", CONTEXT) == "[][][]"


def test_non_strings_render_as_compact_json() -> None:
    assert render("{{parameters.count}} {{parameters.flags}}", CONTEXT) == '3 {"fast":true}'


def test_list_indexes() -> None:
    assert render("{{steps.1}}{{steps.9}}", CONTEXT) == "b"


def test_rendered_text_is_not_rendered_again() -> None:
    assert render("{{implementation.text}}", CONTEXT) == "body with {{parameters.stage}} inside"


def test_text_without_placeholders_is_unchanged() -> None:
    assert render("plain { braces } and }} {{", CONTEXT) == "plain { braces } and }} {{"
