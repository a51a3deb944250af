"""G-DetKD (Yao et al., ICCV 2021): the method that picks its pipeline
(``gdetkd.py``), the two pipelines (``two_stage.py``, ``dense.py``), the
dense student's region representations (``region_repr.py``) and the region
helpers they share."""
from .gdetkd import GDetKD
from .two_stage import GDetKDTwoStage
from .dense import GDetKDDense
from .region_projector import RegionProjector
from .region_repr import DENSE_REGION_REPRS, DenseRegionRepr

__all__ = [
    'GDetKD', 'GDetKDTwoStage', 'GDetKDDense', 'RegionProjector',
    'DENSE_REGION_REPRS', 'DenseRegionRepr'
]
