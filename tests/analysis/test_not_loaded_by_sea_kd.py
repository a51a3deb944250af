"""``import sea_kd`` (a config's ``custom_imports``) leaves the analysis
package unloaded."""
import subprocess
import sys

from ..conftest import REPO


def test_import_sea_kd_loads_no_analysis_module():
    code = ('import sys, sea_kd, sea_kd.models, sea_kd.engine, '
            'sea_kd.datasets, sea_kd.utils; '
            "print(sorted(m for m in sys.modules "
            "if m.startswith('sea_kd.analysis')))")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stdout


def test_the_analysis_modules_import_by_their_full_names():
    code = ('import sea_kd.analysis.comparison, '
            'sea_kd.analysis.comparison_plot, sea_kd.analysis.pair_report, '
            'sea_kd.analysis.training_curves, '
            'sea_kd.analysis.random_weights, '
            'sea_kd.analysis.synthetic_coco; import sys; '
            "print('sea_kd.analysis.pair_report' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'True', out.stderr
