import sys
import types

import pytest

from sea_kd.utils import env_check


def test_version_parsing():
    assert env_check._version_tuple('2.1.0') == (2, 1, 0)
    assert env_check._version_tuple('2.0.0rc4') == (2, 0, 0)
    assert env_check._version_tuple('2.13.0+cpu') == (2, 13, 0)
    assert env_check._version_tuple('3.5') == (3, 5, 0)


def test_installed_stack_passes():
    env_check.check_environment()


def test_unsupported_version_names_package_and_fix(monkeypatch):
    fake = types.ModuleType('mmdet')
    fake.__version__ = '2.28.2'
    monkeypatch.setitem(sys.modules, 'mmdet', fake)
    with pytest.raises(ImportError, match=r'mmdet 3.0.0 <= version < 4.0.0, '
                       r'found 2.28.2.*tools/setup_env.sh'):
        env_check.check_environment()


def test_mmcv_without_ops_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmcv._ext', None)  # import fails
    with pytest.raises(ImportError, match='without its compiled ops.*'
                       '--no-build-isolation'):
        env_check.check_environment()
