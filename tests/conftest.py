from __future__ import annotations

import pytest
from hypothesis import settings

from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier

# The machines are shared and noisy: no per-example deadline (speed is measured in bench/).
settings.register_profile("monitor", deadline=None)
settings.load_profile("monitor")


@pytest.fixture(scope="session")
def catalogue() -> catalogue_mod.Catalogue:
    return catalogue_mod.load()


@pytest.fixture(scope="session")
def classifier(catalogue: catalogue_mod.Catalogue) -> Classifier:
    return Classifier(catalogue)
