"""A local copy of the pinned swagger-ui-dist, fetched once with npm into build/ (git-ignored).

The /docs tests check the hashes in chalicelib/docs.py against it, and the
browser tests answer the page's CDN requests from it, so no test needs the CDN.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from chalicelib import docs
from tests.conftest import ROOT

CACHE = ROOT / "build" / f"swagger-ui-dist-{docs.SWAGGER_UI_VERSION}"


def swagger_ui_dist() -> Path:
    """The package's files (``CACHE/package/…``), downloaded from the npm registry on first use."""
    package = CACHE / "package"
    if (package / "package.json").exists():
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch swagger-ui-dist for the /docs tests (apt-get install npm)")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as tmp:
        # `npm pack` checks the tarball against the registry's integrity hash.
        subprocess.run([npm, "pack", f"swagger-ui-dist@{docs.SWAGGER_UI_VERSION}", "--silent"], cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL, timeout=300)  # fmt: skip
        (tarball,) = Path(tmp).glob("swagger-ui-dist-*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data")
        staged = Path(tmp) / "staged"
        staged.mkdir()
        (Path(tmp) / "package").rename(staged / "package")
        with contextlib.suppress(OSError):  # another run got there first
            staged.rename(CACHE)
    return package
