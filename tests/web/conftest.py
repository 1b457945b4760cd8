"""Fixtures of the review app's tests (helpers in reviewharness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reviewharness import Browser, World, copy_district, make_review
from starlette.testclient import TestClient

from monitor.district import DistrictLoader
from monitor.web import Review, create_app


@pytest.fixture(scope="session")
def district_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_district(tmp_path_factory.mktemp("web") / "district")


@pytest.fixture(scope="session")
def loader(district_dir: Path) -> DistrictLoader:
    loader = DistrictLoader(district_dir)
    loader.load()
    return loader


@pytest.fixture
def world_factory(loader: DistrictLoader, tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Makes Worlds over fresh SQLite stores, with ReviewSettings overrides."""
    made: list[Review] = []

    def make(**settings: Any) -> World:
        url = f"sqlite:///{tmp_path / f'store{len(made)}.sqlite'}"
        review = make_review(loader, url, **settings)
        made.append(review)
        return World(review, url)

    yield make
    for r in made:
        r.close()


@pytest.fixture
def world(world_factory: Callable[..., World]) -> World:
    """A World with one account of each kind."""
    w = world_factory()
    w.account("admin", "administrator")
    w.account("hs-counselor", "counselor", "hs", position="School counselor")
    w.account("es-counselor", "counselor", "es", position="School counselor")
    w.account("ms-hs-counselor", "counselor", "ms", "hs", position="Adjustment counselor")
    w.account("auditor", "auditor", position="Records officer")
    return w


@pytest.fixture
def browser_for(world: World) -> Iterator[Callable[..., Browser]]:
    """Makes in-process browsers on the world's app, signed in as the given user."""
    clients: list[TestClient] = []

    def make(username: str | None = None) -> Browser:
        client = TestClient(create_app(world.review), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        b = Browser(client)
        if username:
            assert b.sign_in(username).status_code == 303
        return b

    yield make
    for c in clients:
        c.__exit__(None, None, None)
