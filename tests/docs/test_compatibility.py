"""docs/compatibility.md is true: every "yes" cell builds and trains one
step, every "no" cell is refused with a message naming methods that work."""
import os.path as osp
import re

import pytest

from ..conftest import REPO
from .compatibility_cells import (DENSE_PAIRS, FAMILIES, METHODS, PAIRS,
                                  method_answer, run_cell, teacher_checkpoint)

PAGE = osp.join(REPO, 'docs', 'compatibility.md')
HINT = re.compile(r'Methods that distil this pair: ([^(]+) \(')


def read_tables():
    """``[(columns, {(row, column): cell})]``, one per table of the page."""
    with open(PAGE) as f:
        text = f.read()
    tables = []
    for block in re.split(r'\n(?!\| )', text):
        lines = [line for line in block.split('\n') if line.startswith('| ')]
        if not lines:
            continue
        header = [c.strip() for c in lines[0].strip().strip('|').split('|')]
        matrix = {}
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            for column, cell in zip(header[1:], cells[1:]):
                matrix[cells[0], column] = cell
        tables.append((header[1:], matrix))
    return tables


(COLUMNS, FAMILY_MATRIX), (DENSE_COLUMNS, DENSE_MATRIX) = read_tables()
MATRIX = {**FAMILY_MATRIX, **DENSE_MATRIX}


def test_the_table_covers_every_method_and_family():
    assert COLUMNS == list(FAMILIES)
    assert {row for row, _ in FAMILY_MATRIX} == set(METHODS)
    for cell in FAMILY_MATRIX.values():
        assert cell in ('yes', 'yes with an adapter') or \
            cell.startswith('no: '), cell


def test_the_dense_pairs_table_covers_every_method_and_pair():
    assert DENSE_COLUMNS == list(DENSE_PAIRS)
    assert {row for row, _ in DENSE_MATRIX} == set(METHODS)
    for cell in DENSE_MATRIX.values():
        assert cell in ('yes', 'yes with an adapter') or \
            cell.startswith('no: '), cell


def working(column):
    return {row for (row, col), cell in MATRIX.items()
            if col == column and cell.startswith('yes')}


@pytest.mark.parametrize('column', list(PAIRS))
def test_cells_are_the_methods_answers(column):
    """Each cell says what the method answers for the pair: "yes..."
    when it accepts it, "no: <its reason>" when it refuses it."""
    for row in METHODS:
        answer = method_answer(row, column)
        cell = MATRIX[row, column]
        expected = 'yes' if answer is None else f'no: {answer}'
        assert cell.startswith('yes') if answer is None else \
            cell == expected, (row, column, cell, expected)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('compat_teachers')
    return {column: teacher_checkpoint(column, str(folder / f'{i}.pth'))
            for i, column in enumerate(PAIRS)}


@pytest.mark.parametrize('column', list(PAIRS))
def test_column(column, checkpoints):
    """One family: every method's cell against the code."""
    yes = working(column)
    for row in METHODS:
        cell = MATRIX[row, column]
        trains, message = run_cell(row, column, checkpoints[column])
        if cell.startswith('yes'):
            assert trains, (f'docs/compatibility.md says {row} distils '
                            f'{column}, but the build refused:\n{message}')
            continue
        assert not trains, (f'docs/compatibility.md says {row} cannot '
                            f'distil {column}, but it trains: make the '
                            'cell "yes".')
        hint = HINT.search(message)
        if not yes:
            assert 'No method of sea_kd distils' in message, message
            continue
        assert hint, f'{row} on {column}: no method named in\n{message}'
        named = {n.strip() for n in hint.group(1).split(',')}
        assert named and named <= yes, (row, column, named, yes)
