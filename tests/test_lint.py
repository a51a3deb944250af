"""The lint configuration of pyproject.toml holds: ruff (errors, warnings,
line length) and isort (OpenMMLab's import order) find nothing. Both come
with ``tools/setup_env.sh``."""
import subprocess
import sys

import pytest

from .conftest import REPO

FIX = {
    'ruff': 'fix the lines it names (`python -m ruff check --fix .` fixes '
            'some)',
    'isort': 'run `python -m isort sea_kd tools tests configs`',
}


def _run(tool, *args):
    out = subprocess.run([sys.executable, '-m', tool, *args], cwd=REPO,
                         capture_output=True, text=True)
    if 'No module named' in out.stderr:
        pytest.fail(f'{tool} is not installed: run `bash tools/setup_env.sh`'
                    f' (it installs the lint tools with the test tools).')
    return out


@pytest.mark.parametrize('tool, args', [
    ('ruff', ('check', '--no-cache', '.')),
    ('isort', ('--check-only', '--diff', 'sea_kd', 'tools', 'tests',
               'configs')),
])
def test_the_code_passes_the_linter(tool, args):
    out = _run(tool, *args)
    assert out.returncode == 0, (
        f'{tool} found problems; {FIX[tool]}:\n{out.stdout}{out.stderr}')
