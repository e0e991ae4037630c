"""The docs' example test is the one the suite runs (no drift between the two)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_docs_example_is_the_tested_code():
    doc = (ROOT / "docs/pytest-plugin.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    tested = (ROOT / "tests/integration/test_plugin.py").read_text()
    for line in code.splitlines():
        if line.strip() and not line.startswith(("import ", "from ")):
            assert line in tested, line
