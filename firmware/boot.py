# Runs before main.py on every reset. Kept empty of logic: a mistake here can lock a maker out
# of the REPL, so the firmware starts in main.py where Ctrl-C still reaches the prompt.
