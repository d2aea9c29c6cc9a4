"""One contract for every registered model: fitted on a small fold, saved into a folder, loaded, it predicts the same
numbers on a bare feature frame (no targets, no fold) as before saving; the registry knows names and capabilities
without importing TensorFlow, and the classes agree with it; a deep headline served through the MLflow pyfunc
predicts what the forecaster itself predicts. Sizes are tiny (deep models: one epoch) so the file runs in about a
minute; real BTC data when it is there, else a synthetic coin."""
import os
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, ROOT
from cryptoforecast.config import get_config
from cryptoforecast.dataset import chronological_split, synthetic_feature_frame, target_col
from cryptoforecast.forecaster import MODELS, make_model, model_class, model_entry, model_names
from cryptoforecast.metrics import QUANTILE_COLS

LOOKBACK = 30
DEEP_TINY = dict(lookback=LOOKBACK, epochs=1, batch_size=64)
TINY = {  # the smallest settings that still train; a model registered later runs with its defaults
    'lightgbm': dict(n_estimators=30), 'lightgbm_stacked': dict(n_estimators=30), 'lightgbm_global': dict(n_estimators=30),
    'lstm': dict(units=(8,), attention_units=4, **DEEP_TINY),
    'transformer': dict(d_model=8, num_heads=1, num_layers=1, ff_dim=16, **DEEP_TINY),
    'lstm_global': dict(units=(8,), attention_units=4, **DEEP_TINY),
    'transformer_global': dict(d_model=8, num_heads=1, num_layers=1, ff_dim=16, **DEEP_TINY),
    'ensemble': dict(member_kwargs={'lightgbm': dict(n_estimators=30)}),
}
TINY['ensemble_global'] = dict(member_kwargs={m: TINY[m] for m in ('lightgbm_global', 'lstm_global', 'transformer_global')})
NUMBERS = ['mean', *QUANTILE_COLS]


def _frame() -> pd.DataFrame:
    "BTC's last 900 days of features (real data when available), else a synthetic coin."
    cfg = get_config()
    if DATA_DIR.exists():
        from cryptoforecast.data import load_universe
        from cryptoforecast.features import build_features
        btc = load_universe(DATA_DIR, ['BTC'])['BTC']
        return build_features(btc.iloc[-1000:], horizons=cfg.horizons)
    return synthetic_feature_frame(900, horizons=cfg.horizons, seed=3)


@pytest.fixture(scope='module')
def fold():
    frame = _frame()
    return chronological_split(frame.iloc[-900:], get_config(lookback=LOOKBACK), n_features=10)


@pytest.fixture(scope='module')
def bare(fold) -> pd.DataFrame:
    "What a deployed model gets: the last days of the feature frame, without the targets."
    f = fold.frame.iloc[-(LOOKBACK + 20):]
    return f.drop(columns=[target_col(h) for h in fold.horizons if target_col(h) in f])


def fitted(name: str, fold):
    m = make_model(name, seed=0, **TINY.get(name, {}))
    return m.fit_many([fold]) if model_entry(name).is_global else m.fit(fold)


@pytest.mark.parametrize('name', model_names())
def test_fit_save_load_predict_frame(name, fold, bare, tmp_path):
    m = fitted(name, fold)
    before = m.predict_frame(bare)
    assert len(before) and before['coin'].eq(fold.coin).all() and before['model'].eq(name).all()
    assert before['actual'].isna().all()  # no targets in a bare frame
    m.save(tmp_path / name)                # a folder: the model names its own files
    loaded = model_class(name).load(tmp_path / name)
    after = loaded.predict_frame(bare)
    pd.testing.assert_frame_equal(before.drop(columns=NUMBERS), after.drop(columns=NUMBERS))
    np.testing.assert_allclose(after[NUMBERS].to_numpy(), before[NUMBERS].to_numpy(), atol=1e-6, rtol=0)
    # the public forecast is what the predictions frame holds (intervals filled in once, sorted)
    mean, q = m.forecast(fold, 'test')
    p = m.predict(fold, 'test')
    np.testing.assert_allclose(p['mean'].to_numpy(), mean.reshape(-1), atol=1e-12)
    np.testing.assert_allclose(p[list(QUANTILE_COLS)].to_numpy(), q.reshape(-1, q.shape[-1]), atol=1e-12)


@pytest.mark.parametrize('name', model_names())
def test_class_capabilities_match_the_registry(name):
    entry, cls = model_entry(name), model_class(name)
    for cap in ('is_global', 'needs_windows', 'is_ensemble', 'is_peer', 'own_volatility'):
        assert getattr(cls, cap) == getattr(entry, cap), (name, cap)
    assert callable(getattr(cls, 'fit_many', None)) == entry.is_global


def test_registry_imports_no_tensorflow():
    code = ("import sys, cryptoforecast.backtest, cryptoforecast.train, cryptoforecast.tuning, cryptoforecast.data_cli\n"
            "from cryptoforecast.forecaster import model_names, model_entry\n"
            "assert model_names(needs_windows=True, is_global=False) == ['lstm', 'transformer'] and model_entry('lstm').needs_windows\n"
            "bad = [m for m in ('tensorflow', 'keras', 'cryptoforecast.lstm', 'arch', 'statsforecast') if m in sys.modules]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]


def test_unknown_model_is_a_user_error():
    from cryptoforecast.cli import UserError
    with pytest.raises(UserError, match="unknown model 'prophet'"): make_model('prophet')


def test_no_model_names_in_the_harness():
    "Backtest, training and tuning ask the registry: no registered model's name is tested there."
    for mod in ('backtest', 'train', 'tuning'):
        text = (ROOT / 'cryptoforecast' / f'{mod}.py').read_text()
        for needle in ("'lightgbm_global'", "('lstm', 'transformer')", "fitted['lstm']", "fitted['lightgbm']", "!= 'ensemble'",
                       "in DEEP", "== 'lstm'"):
            assert needle not in text, (mod, needle)


@pytest.mark.parametrize('name', model_names(needs_windows=True, is_global=False))
def test_deep_headline_served_by_mlflow_pyfunc(name, fold, bare, tmp_path):
    "A Keras forecaster logged as the pyfunc headline loads and predicts on a feature frame (it needs its fold metadata)."
    import mlflow
    from cryptoforecast.tracking import as_feature_frame, log_forecaster, setup_mlflow
    m = fitted(name, fold)
    prev = mlflow.get_tracking_uri()
    setup_mlflow(artifacts_dir=tmp_path)
    try:
        with mlflow.start_run():
            info = log_forecaster(m, name='model')
        served = mlflow.pyfunc.load_model(info.model_uri).predict(bare.reset_index())
    finally:
        mlflow.set_tracking_uri(prev); mlflow.set_registry_uri(prev)
    want = m.predict_frame(as_feature_frame(bare.reset_index()))
    np.testing.assert_allclose(served[NUMBERS].to_numpy(dtype=float), want[NUMBERS].to_numpy(), atol=1e-6, rtol=0)
