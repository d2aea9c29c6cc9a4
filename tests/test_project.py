"""The project's own files agree with each other: README vs index.ipynb, environment.yml vs pyproject, the Quarto site."""
import shutil, subprocess, sys, tomllib
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import make_readme

def test_readme_matches_index_notebook():
    assert (ROOT/'README.md').read_text() == make_readme.render(), "README.md is stale: run `make readme`"

def test_environment_yml_mirrors_pyproject():
    proj = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']
    deps = proj['dependencies'] + proj['optional-dependencies']['dev']
    env = yaml.safe_load((ROOT/'environment.yml').read_text())
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict))
    assert [d for d in pip if d != '-e .'] == deps
    assert 'python=3.11' in env['dependencies']

def test_quarto_site_config():
    q = yaml.safe_load((ROOT/'_quarto.yml').read_text())
    assert q['project']['type'] == 'website' and q['execute']['freeze'] == 'auto'
    assert 'nbs/*.ipynb' in q['project']['render'] and any(r.startswith('reports/') for r in q['project']['render'])
    assert (ROOT/'reports'/'index.qmd').exists()

def test_layout():
    for p in ['nbs', 'cryptoforecast', 'reports', 'data/raw', 'data/processed', 'artifacts', 'tests', 'benchmarks',
              'pyproject.toml', 'environment.yml', '_quarto.yml', 'README.md', 'Makefile', '.ci/run']:
        assert (ROOT/p).exists(), p
    assert not (ROOT/'settings.ini').exists(), 'nbdev 3 keeps its settings in pyproject.toml'
    assert 'tool' in tomllib.loads((ROOT/'pyproject.toml').read_text()) and 'nbdev' in tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']

@pytest.mark.skipif(shutil.which('quarto') is None, reason='the quarto binary is not installed (not installable on this machine)')
def test_quarto_inspect():
    r = subprocess.run(['quarto', 'inspect', str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
