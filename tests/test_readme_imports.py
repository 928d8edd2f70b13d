"""Every Python import line in README.md imports: the names a reader copies are where it says."""
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
INLINE = re.findall(r"`(from centaur[^`]*? import [^`]*)`", README)
BLOCKS = [line for block in re.findall(r"```python\n(.*?)```", README, re.S) for line in block.splitlines()
          if line.startswith(("from ", "import "))]


def test_the_readme_has_import_lines():
    assert len(INLINE) >= 3 and len(BLOCKS) >= 10


@pytest.mark.parametrize("line", INLINE + BLOCKS)
def test_readme_import_line_imports(line):
    exec(line, {})
