"""
The wheel carries the twistd plugin: built from this checkout and installed
into a clean virtual environment, C{twistd --help} lists C{isis}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import venv
import zipfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent


class WheelTests(SynchronousTestCase):
    def test_wheel_installs_the_plugin(self) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            where = Path(scratch)
            build = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "--quiet",
                    "--wheel-dir",
                    str(where / "dist"),
                    str(ROOT),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.assertEqual(build.returncode, 0, build.stderr)
            (wheel,) = (where / "dist").glob("isis_twisted-*.whl")
            names = zipfile.ZipFile(wheel).namelist()
            self.assertIn("twisted/plugins/isis_plugin.py", names)
            self.assertIn("isis_twisted/core/engine.py", names)
            self.assertIn("isis_twisted/py.typed", names)
            # The status page the HTTP API serves.
            for page in ("index.html", "page.js", "page.css"):
                self.assertIn(f"isis_twisted/api/page/{page}", names)
            self.assertFalse([n for n in names if "dropin.cache" in n], names)
            self.assertFalse([n for n in names if n.startswith("tests/")], names)
            self.assertFalse(
                [
                    n
                    for n in names
                    if n.startswith("twisted/") and n.endswith("__init__.py")
                ],
                "twisted/ and twisted/plugins/ must stay without __init__.py",
            )

            # A clean environment: the wheel alone, with its dependencies
            # taken from this one's site-packages (no index needed).  Nothing
            # of the checkout is importable there.
            env_dir = where / "venv"
            venv.EnvBuilder(with_pip=True).create(env_dir)
            python = env_dir / "bin" / "python"
            install = subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    str(wheel),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.assertEqual(install.returncode, 0, install.stderr)
            site = subprocess.run(
                [
                    str(python),
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            Path(site, "deps-from-test-env.pth").write_text(
                sysconfig.get_paths()["purelib"] + "\n"
            )
            clean_env = {
                k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)
            }
            shown = subprocess.run(
                [
                    str(python),
                    "-c",
                    "from twisted.scripts.twistd import run; run()",
                    "--help",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=scratch,
                env=clean_env,
            )
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("isis", shown.stdout.split("Commands:")[-1])
            located = subprocess.run(
                [
                    str(python),
                    "-c",
                    "import isis_twisted; print(isis_twisted.__file__)",
                ],
                capture_output=True,
                text=True,
                cwd=scratch,
                env=clean_env,
                check=True,
            ).stdout
            self.assertTrue(located.startswith(site), located)
            self.assertTrue((env_dir / "bin" / "isis").exists())
