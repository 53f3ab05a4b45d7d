# microfab device firmware. Named `fab` so that it never shadows the host package `microfab`
# when the simulator imports both into one process.
VERSION = "0.1.0"
# Bumped when a command's arguments or a reply's fields change incompatibly.
PROTOCOL = 1
