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

MLFLOW_URI_VARS = ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI')

@pytest.fixture(autouse=True)
def no_mlflow_uris_in_the_environment():
    """Each test starts and ends without MLflow URIs in the environment (`mlflow.set_tracking_uri` exports them there,
    and a user's MLFLOW_TRACKING_URI wins over every store a test names)."""
    saved = {k: os.environ.pop(k, None) for k in MLFLOW_URI_VARS}
    yield
    if 'mlflow' in sys.modules:  # put MLflow's in-process URIs back to their defaults
        import mlflow
        mlflow.set_tracking_uri(None); mlflow.set_registry_uri(None)
    for k, v in saved.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v

@pytest.fixture
def data_dir() -> Path:
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR

def run_cli(*args, cwd=None, env=None, timeout=600):
    "Run the installed `cryptoforecast` console script; returns the CompletedProcess."
    exe = Path(sys.executable).parent/'cryptoforecast'
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(exe), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run']

def data_dir_with_broken_coin(folder: Path, days: int = 100) -> Path:
    "A data folder with a copy of ETH's real file and a coin XYZ whose file has a negative price."
    import shutil
    import pandas as pd
    from cryptoforecast.batch import coin_sources
    shutil.copy(coin_sources(DATA_DIR)['ETH'].path, folder)
    dates = pd.date_range('2022-01-01', periods=days, freq='D')
    xyz = pd.DataFrame(dict(datetime=dates.strftime('%Y-%m-%d'), open=10., high=11., low=9., close=10., volume=1e5))
    xyz.loc[days // 2, 'close'] = -5.
    xyz.to_csv(folder/'XYZ-USD_1d.csv', index=False)
    return folder

def prices_times_random_walk_after(ohlcv, T, seed: int):
    """A copy of an OHLCV frame whose prices after `T` are multiplied by a random walk (volume untouched): the future
    perturbation of the leakage tests."""
    import numpy as np
    out = ohlcv.copy()
    after = out.index > T
    walk = np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.04, after.sum())))
    for c in ('open', 'high', 'low', 'close'): out.loc[after, c] = out.loc[after, c] * walk
    return out
