from __future__ import annotations

import pytest

from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier


@pytest.fixture(scope="session")
def catalogue() -> catalogue_mod.Catalogue:
    return catalogue_mod.load()


@pytest.fixture(scope="session")
def classifier(catalogue: catalogue_mod.Catalogue) -> Classifier:
    return Classifier(catalogue)
