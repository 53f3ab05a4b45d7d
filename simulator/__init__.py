"""microfab's virtual board: the firmware's own files on a virtual clock, wired to physics models."""
