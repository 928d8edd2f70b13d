"""Every `centaur` command says what it does, and every option says what it is for, in --help."""
import argparse

import pytest

from centaur.cli import build_parser, main


def _commands(parser, prefix=()):
    """(name words, parser) for every command and subcommand under parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield (*prefix, name), command
                yield from _commands(command, (*prefix, name))


COMMANDS = list(_commands(build_parser()))


def test_every_command_is_listed_with_a_summary():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help for choice in sub._choices_actions}
    assert set(summaries) == set(sub.choices)
    assert all(text and text.strip() for text in summaries.values()), summaries


@pytest.mark.parametrize("words,command", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_has_a_description_and_every_option_a_help_text(words, command):
    assert command.description and command.description.strip(), f"`centaur {' '.join(words)}` has no description"
    for action in command._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"`centaur {' '.join(words)}` {name} has no help text"
    command.format_help()  # a stray % in a help text fails only here


def test_defaults_that_the_readme_quotes_are_in_the_help(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 128)", "(default: squish)", "(default: 0.2)", "(default: 42)", "tables"):
        assert shown in text, shown
    assert main(["--help"]) == 0
    assert "table model" in capsys.readouterr().out


def test_download_help_names_the_folder_by_its_option(capsys):
    assert main(["download", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--out FOLDER" in text
