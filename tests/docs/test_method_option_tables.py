"""Every option table of a method page (``docs/methods/*.md``, marked
``<!-- options of: Class [Class ...] -->``) names real constructor
arguments of those classes, with the defaults the code has."""
import ast
import glob
import inspect
import os.path as osp
import re

import pytest
from mmdet.registry import MODELS

import sea_kd.models  # noqa: F401  (registers the classes)

from ..tools.helpers import REPO

MARKER = re.compile(r'<!-- options of: ([\w ]+) -->')


def option_tables():
    """``(page, line, class names, [(line, options, default cell)])``."""
    tables = []
    for page in sorted(glob.glob(osp.join(REPO, 'docs', 'methods', '*.md'))):
        with open(page) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            match = MARKER.fullmatch(line.strip())
            if not match:
                continue
            assert lines[i + 1].startswith('| option | default'), \
                f'{page}:{i + 1}: the marker must sit on the table'
            rows, j = [], i + 3
            while j < len(lines) and lines[j].startswith('|'):
                cells = [c.strip() for c in lines[j].strip('|').split('|')]
                rows.append((j + 1, re.findall(r'`(\w+)`', cells[0]),
                             cells[1]))
                j += 1
            tables.append((osp.basename(page), i + 1,
                           match.group(1).split(), rows))
    return tables


def signature_defaults(class_names):
    params = {}
    for name in class_names:
        cls = MODELS.get(name)
        assert cls is not None, f'{name} is not a registered class'
        for klass in reversed(cls.__mro__):
            if '__init__' in vars(klass):
                params.update(inspect.signature(klass.__init__).parameters)
    params.pop('self', None)
    defaults = {k: p.default for k, p in params.items()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if 'name' in defaults:  # a method's name: None means its default_name
        defaults['name'] = getattr(MODELS.get(class_names[0]),
                                   'default_name', None)
    return defaults


def literal(cell: str):
    """The default cell as a value: ``1.0``, ```'kl'```, ```None```,
    ```dict(type='X', a=1)```, also followed by a note (```None` (all)``,
    ```dict(...)` [code]``); ``NotImplemented`` for prose."""
    match = re.match(r'`([^`]+)`|([-+0-9.e]+)(?=\s|$)', cell)
    if not match:
        return NotImplemented
    text = match.group(1) or match.group(2)
    try:
        node = ast.parse(text, mode='eval').body
    except SyntaxError:
        return NotImplemented

    def value(n):
        name = getattr(getattr(n, 'func', None), 'id', '')
        if isinstance(n, ast.Call) and not n.args and name:
            kwargs = {k.arg: value(k.value) for k in n.keywords}
            # `Loss(a=1)` stands for dict(type='Loss', a=1)
            return kwargs if name == 'dict' else dict(type=name, **kwargs)
        return ast.literal_eval(n)

    try:
        return value(node)
    except ValueError:
        return NotImplemented


def same(doc, code) -> bool:
    if isinstance(code, (tuple, list)) and isinstance(doc, (tuple, list)):
        return list(doc) == list(code)
    if isinstance(code, float) or isinstance(doc, float):
        return isinstance(code, (int, float)) and \
            not isinstance(code, bool) and float(doc) == float(code)
    return doc == code


TABLES = option_tables()


def test_every_method_page_marks_its_tables():
    pages = {page for page, *_ in TABLES}
    methods = {osp.basename(p) for p in glob.glob(
        osp.join(REPO, 'docs', 'methods', '*.md'))}
    assert pages == methods
    assert len(TABLES) >= 16


@pytest.mark.parametrize('page,line,classes,rows', TABLES,
                         ids=[f'{t[0]}:{t[1]}' for t in TABLES])
def test_options_and_defaults_match_the_code(page, line, classes, rows):
    defaults = signature_defaults(classes)
    wrong, checked = [], 0
    for row_line, options, cell in rows:
        for option in options:
            if option not in defaults:
                wrong.append(f'{page}:{row_line}: `{option}` is not an '
                             f'argument of {classes}')
                continue
            documented = literal(cell)
            checked += documented is not NotImplemented
            if documented is not NotImplemented and not same(
                    documented, defaults[option]):
                wrong.append(f'{page}:{row_line}: `{option}` defaults to '
                             f'{defaults[option]!r}, the page says {cell}')
    assert not wrong, '\n'.join(wrong)
    assert checked, f'{page}:{line}: no default of this table was checked'



def test_literal_reads_the_forms_the_pages_use():
    assert literal("`'kl'`") == 'kl' and literal('1.8') == 1.8
    assert literal("`dict(type='PKDLoss', loss_weight=6.0)`") == dict(
        type='PKDLoss', loss_weight=6.0)
    assert literal('`None`') is None and literal('`(1.0, 1.0)`') == (1.0,
                                                                      1.0)
    assert literal('filled by the distiller') is NotImplemented
    assert literal("`dict(type='SGFILoss')` [code]") == dict(type='SGFILoss')
    assert literal('`None` (all)') is None and literal('2.0 [paper]') == 2.0
    assert literal('`PKDLoss(loss_weight=6)`') == dict(type='PKDLoss',
                                                       loss_weight=6)
    assert not same(2.0, 1.0) and same(3, 3.0) and same([1, 2], (1, 2))
