"""
C{isis certs}: create a CA and one certificate per member for mutual TLS
(L{isis_twisted.net.certs}); it needs no node.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from twisted.python import usage

from isis_twisted.app.clibase import EXIT_OK, EXIT_USAGE, CommandOptions, OptionTable
from isis_twisted.net.certs import CertificateError, write_group_certs

__all__ = ["CertsOptions", "run_certs"]


class CertsOptions(CommandOptions):
    """
    Options of C{isis certs}.
    """

    synopsis = "--dir DIR NAME ..."
    longdesc = (
        "Create a CA and one certificate per member for mutual TLS"
        " (twistd isis --tls-dir DIR): DIR/ca.pem for every member,"
        " DIR/NAME.pem for member NAME, and DIR/ca.key.pem, the CA's key, to"
        " keep off the members.  Nothing is overwritten."
    )
    optParameters: ClassVar[OptionTable] = [
        ["dir", "d", None, "Where to write the files (required)."]
    ]

    def parseArgs(self, *names: str) -> None:
        """
        Keep the member names.
        """
        if not names:
            raise usage.UsageError("give the members' names")
        if len(set(names)) != len(names):
            raise usage.UsageError("a member name is given twice")
        self["names"] = list(names)

    def postOptions(self) -> None:
        """
        Require C{--dir}.
        """
        if not self["dir"]:
            raise usage.UsageError("--dir is required")


def run_certs(options: CertsOptions) -> int:
    """
    C{isis certs}: write the files and print their paths.

    @param options: The parsed C{certs} options.
    @return: The exit status: 0 once written, 2 when they cannot be (a file
        already there, a directory that cannot be written, no TLS support).
    """
    try:
        written = write_group_certs(options["dir"], options["names"])
    except CertificateError as e:
        sys.stderr.write(f"isis certs: {e}\n")
        return EXIT_USAGE
    except ImportError:
        sys.stderr.write(
            "isis certs: needs Twisted's TLS support: pip install 'isis-twisted[tls]'\n"
        )
        return EXIT_USAGE
    for path in written:
        print(path)
    return EXIT_OK
