"""
The client API floor: AMP commands, server and client, and the HTTP/JSON
API with its status page.

It builds on L{isis_twisted.net} and L{isis_twisted.core}; nothing here
imports the application floor (twistd plugin, C{isis} command) or the tools.
"""
