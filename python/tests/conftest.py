"""Tests need a running daemon: WORLD_API_URL and WORLD_API_TOKEN (the
Rust test `cargo test --release -p world-server --test python` starts
one in temporary directories and runs these)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(scope="session")
def client():
    if not (os.environ.get("WORLD_API_URL") and os.environ.get("WORLD_API_TOKEN")):
        pytest.skip("no daemon: set WORLD_API_URL and WORLD_API_TOKEN")
    from worldruntime import Client

    return Client()


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Every test destroys what it made."""
    if not os.environ.get("WORLD_API_URL"):
        yield
        return
    from worldruntime import Client

    c = Client()
    before = {w.id for w in c.worlds()}
    yield
    left = [w for w in c.worlds() if w.id not in before]
    for w in left:
        w.destroy()
    assert not left, f"test leaked worlds: {left}"
