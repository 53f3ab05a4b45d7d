"""The same seed gives the same run, bit for bit; another seed gives another world."""


def run(make_board, seed):
    b = make_board(seed=seed)
    b.send("home")
    b.send("job", moves=[[20, 40], [180, 50]], repeat=2)
    b.advance(30)
    return b.log, b.axis.status(), b.now


def test_same_seed_same_run(make_board):
    assert run(make_board, 7) == run(make_board, 7)


def test_other_seed_other_world(make_board):
    a, b = make_board(seed=1), make_board(seed=2)
    assert a.axis.position() != b.axis.position()
