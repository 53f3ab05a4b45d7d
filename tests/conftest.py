import pytest

from microfab_sim.board import SimBoard


@pytest.fixture
def make_board():
    """SimBoard factory; every board made is closed after the test."""
    made = []

    def make(**kw):
        kw.setdefault("seed", 1)
        b = SimBoard(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def board(make_board):
    return make_board()


@pytest.fixture
def homed(make_board):
    b = make_board()
    assert b.send("home")["ok"]
    return b
