"""
Tools for proving and trying isis-twisted: the deterministic simulators,
fault injection, test fakes and the README's local cluster.

They sit on top and may use every floor; the library never imports them.
"""
