import os

import pytest


# Tests never touch the user's cache; one cache per test session keeps first-use training to once.
@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    env = os.environ.get("GREENBENCH_CACHE")
    return env if env else tmp_path_factory.mktemp("greenbench-cache")
