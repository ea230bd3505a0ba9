"""Every Python block of the README runs as written, with the demo's scenario replaced by a tiny instance (the demo
takes too long for the suite) and run in a fresh interpreter inside a temporary folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_instance

README = Path(__file__).resolve().parents[1] / "README.md"
DEMO = "instances/huanjiang-demo/scenario.toml"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_block_runs(number: int, tmp_path: Path) -> None:
    scenario = write_instance(tmp_path / "tiny")
    code = BLOCKS[number].replace(DEMO, scenario.as_posix())
    # A ceiling against hangs only: each block takes seconds on the tiny instance.
    env = {**os.environ, "PYTHONPATH": str(README.parent)}  # this checkout's package, whatever is installed
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"README block {number} failed:\n{code}\n{done.stderr[-3000:]}"
