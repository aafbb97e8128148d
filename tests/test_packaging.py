"""The wheel that ``pip install .`` (the Docker image) builds holds every module of the
package: the editable install ``make`` uses would hide one left out of pyproject.toml
(a newcomer found ``geomayotte.writes`` missing from the wheel)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# source folder -> where it lands in the wheel (pyproject.toml's package-dir)
LAYOUT = {'geomayotte': 'geomayotte', 'providers': 'geomayotte/providers',
          'processes': 'geomayotte/processes'}


def test_the_wheel_has_every_module_and_template(tmp_path):
    # built from a copy: setuptools would reuse a build/ folder left in the checkout
    src = tmp_path / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.git', '.venv*', '.pgdata*', '.run', 'build', '*.egg-info', '__pycache__', 'bench'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(tmp_path), str(src)], check=True, capture_output=True, cwd=tmp_path)
    wheel, = tmp_path.glob('geomayotte-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f'{dest}/{path.relative_to(ROOT / src).as_posix()}'
              for src, dest in LAYOUT.items()
              for pattern in ('*.py', '*.html')
              for path in (ROOT / src).rglob(pattern) if '__pycache__' not in path.parts}
    assert len(wanted) > 50
    assert wanted - names == set(), sorted(wanted - names)
