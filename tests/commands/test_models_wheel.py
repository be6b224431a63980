"""The model files ship inside the wheel (DESIGN: data must work after a plain ``pip install .``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, phone, phone.catalogue
catalogue = phone.catalogue.load_catalogue(environ={})
print(json.dumps({"package": phone.__file__, "origin": catalogue.get("CP-7975").origin,
                  "models": len(catalogue)}))
"""


def test_wheel_carries_every_model_file_and_finds_them_installed(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         str(ROOT), "-w", str(tmp_path)],
        check=True, timeout=110, capture_output=True,
    )
    (wheel,) = tmp_path.glob("phonetrust-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    expected = {f"phone/_bundled/models/{path.name}" for path in (ROOT / "models").glob("*.toml")}
    assert len(expected) >= 8
    assert expected <= names

    # The unpacked wheel, ahead of the editable install on sys.path, finds its own copy.
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, check=True,
    )
    found = json.loads(probe.stdout)
    site = tmp_path / "site" / "phone"
    assert Path(found["package"]).parent == site
    assert Path(found["origin"]) == site / "_bundled" / "models" / "7900.toml"
    assert found["models"] == 56
