"""What the tests that hold a machine's page (docs/machines/*.md) to the code share: the names the
page must give, and what a board file keeps for itself, which a documented pin must not be."""

# each board, and its column in a machine page's wiring table (the Pico W is wired as the Pico)
BOARD_COLUMNS = (("pico", 1), ("pico_w", 1), ("esp32_devkitc", 2), ("esp32s3_devkitc", 3))
BUS_LINES = ("sda", "scl", "sck", "mosi", "miso", "cs", "tx", "rx")


def unnamed(page: str, names, as_: str = "`%s`") -> list:
    """The names the page does not give, each written as `as_` % name."""
    return [n for n in names if as_ % n not in page]


def unnamed_commands(page: str, table: dict, commands, as_: str = "`%s`") -> list:
    """Of `commands`, those the page does not name (as `as_` % name) or the board's hello table
    lacks, and (command, argument) for each argument in the table the page does not name."""
    out = [c for c in commands if c not in table or as_ % c not in page]
    return out + [(c, a) for c in commands for a in table.get(c, ()) if "`%s`" % a not in page]


def taken(board: dict) -> set:
    """The pins of the board's own roles (LED, supply sense...) and of its buses' lines."""
    out = set(board["pins"].values())
    for bus in board["buses"].values():
        out |= {v for k, v in bus.items() if k in BUS_LINES}
    return out
