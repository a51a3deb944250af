"""The test suite's warning policy (pyproject.toml, ``filterwarnings``): a
warning raised from sea_kd's code fails the test that triggers it, and the
known upstream deprecations are filtered by message and module only."""
import warnings

import pytest


def _warn_from(module: str, message: str, category=UserWarning) -> None:
    warnings.warn_explicit(message, category, f'{module}.py', 1,
                           module=module)


@pytest.mark.parametrize('module', ['sea_kd.models.methods.ld.ld',
                                    'sea_kd.analysis.comparison'])
def test_a_warning_from_sea_kd_fails_the_test(module):
    with pytest.raises(UserWarning, match='something new'):
        _warn_from(module, 'something new')


def test_a_known_upstream_deprecation_is_filtered():
    with warnings.catch_warnings(record=True) as caught:
        _warn_from('torch.jit._script',
                   '`torch.jit.script` is deprecated. Please switch to '
                   '`torch.compile` or `torch.export`.', DeprecationWarning)
        _warn_from('pycocotools.mask',
                   "__array__ implementation doesn't accept a copy keyword, "
                   'so passing copy=False failed.', DeprecationWarning)
    assert caught == []


def test_the_filters_name_the_module_not_only_the_message():
    # the same message from another module is not hidden
    with warnings.catch_warnings(record=True) as caught:
        _warn_from('mmdet.models.something',
                   '`torch.jit.script` is deprecated.', DeprecationWarning)
    assert [str(w.message) for w in caught] == [
        '`torch.jit.script` is deprecated.']
