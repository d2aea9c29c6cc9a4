"""Shared fixtures: where the real data is, and how to run the installed CLI."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def real_data_dir() -> Path:
    "The real raw data: $CRYPTOFORECAST_DATA_DIR, else ../shared/data/raw next to the checkout."
    env = os.environ.get('CRYPTOFORECAST_DATA_DIR')
    return Path(env) if env else ROOT.parent/'shared'/'data'/'raw'

DATA_DIR = real_data_dir()
needs_data = pytest.mark.skipif(not DATA_DIR.exists(), reason=f"real data not found at {DATA_DIR} (set CRYPTOFORECAST_DATA_DIR)")

@pytest.fixture
def data_dir() -> Path:
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR

def run_cli(*args, cwd=None, env=None, timeout=600):
    "Run the installed `cryptoforecast` console script; returns the CompletedProcess."
    exe = Path(sys.executable).parent/'cryptoforecast'
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(exe), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
