"""
The application floor: the C{twistd isis} plugin, the C{isis} command,
delivery handlers and metrics.

It may use every floor below it; only the tools import it.
"""
