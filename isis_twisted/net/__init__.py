"""
The network floor: peer links, the node that wires the engine, membership,
links and handlers together, and what a node keeps (history, catch-up).

It builds on L{isis_twisted.core} and never imports the client API, the
application floor or the tools.
"""
