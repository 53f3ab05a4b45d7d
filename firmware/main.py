# Entry point on the board. Everything lives in fab.runtime so that it can be compiled to .mpy.
from fab import runtime

runtime.main()
