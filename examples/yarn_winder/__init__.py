"""The yarn winder, a microfab machine extension: this folder is the extension (machines/ for the
board, sim/ for the simulator). Installed as a package, its entry point in the group
`microfab.machines` names this module, and microfab takes the module's folder."""
