"""microfab: the host tool for microfab boards (real ones on USB, and simulated ones)."""
__version__ = "0.1.0"
