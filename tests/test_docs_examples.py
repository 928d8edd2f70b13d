"""The examples in the docstrings run and print what they show (those marked +SKIP need files or a
server, and are run by hand), so the documentation a user reads in help() stays true."""
import doctest
import importlib
import pkgutil

import pytest

import centaur

MODULES = sorted(m.name for m in pkgutil.walk_packages(centaur.__path__, "centaur."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run it to see)"
