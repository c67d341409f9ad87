"""
The pure floor: the ordering engine, the membership machine, the codecs and
the checkers.

Nothing here imports Twisted, reads a clock, opens a socket or draws a
random number: each part takes events and returns actions and deadlines, so
the simulator can drive it from a seed.  It imports nothing from the floors
above it (L{isis_twisted.net}, L{isis_twisted.api}, L{isis_twisted.app},
L{isis_twisted.tools}).
"""
