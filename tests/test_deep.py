"""Integration tests of the deep forecasters at a slightly larger size than the notebooks use: a two-layer
LSTM stack and a two-block Transformer. Trained twice with one seed they predict the same on CPU; saved and
loaded they predict the same; the Gaussian head, mixed precision and the default 60-day lookback go
through the same code. Most of the time is graph tracing, so each test fits as few models as it can."""
import os
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
import pytest

from cryptoforecast.config import get_config
from cryptoforecast.dataset import synthetic_feature_frame, chronological_split
from cryptoforecast.lstm import LSTMForecaster
from cryptoforecast.transformer import TransformerForecaster
from cryptoforecast.metrics import QUANTILE_COLS, validate_predictions

Q = list(QUANTILE_COLS)
COMMON = dict(lookback=30, epochs=2, batch_size=32, seed=7)
SIZES = {'lstm': (LSTMForecaster, dict(units=(16, 8), attention_units=8)),
         'transformer': (TransformerForecaster, dict(d_model=16, num_heads=2, num_layers=2, ff_dim=32))}

def make(model: str, **kw):
    cls, size = SIZES[model]
    return cls(**{**size, **COMMON, **kw})

@pytest.fixture(scope='module')
def fold(): return chronological_split(synthetic_feature_frame(500, seed=3), get_config(lookback=30), n_features=10)

@pytest.fixture(scope='module')
def fitted(fold): return {m: make(m).fit(fold) for m in SIZES}

@pytest.mark.parametrize('model', sorted(SIZES))
def test_same_seed_same_predictions(model, fold, fitted):
    a, b = fitted[model].predict(fold, 'test'), make(model).fit(fold).predict(fold, 'test')
    validate_predictions(a)
    np.testing.assert_allclose(a[Q].to_numpy(), b[Q].to_numpy(), atol=1e-6, rtol=0)

@pytest.mark.parametrize('model', sorted(SIZES))
def test_save_load_round_trip(model, fold, fitted, tmp_path):
    f = fitted[model]
    g = type(f).load(f.save(tmp_path / model))
    assert g.get_params() == f.get_params() and g.history == f.history and g.horizons == f.horizons
    for part in ('val', 'test'):
        a, b = f.predict(fold, part), g.predict(fold, part)
        np.testing.assert_allclose(a[Q].to_numpy(), b[Q].to_numpy(), atol=1e-6, rtol=0)
        assert a.drop(columns=Q + ['mean']).equals(b.drop(columns=Q + ['mean']))
    if model == 'lstm':
        X = fold.windows('test', lookback=30)[0]
        np.testing.assert_allclose(f.attention_weights(X), g.attention_weights(X), atol=1e-6)

def test_history_records_lr(fitted):
    h = fitted['transformer'].history
    assert len(h['lr']) == len(h['loss']) == len(h['val_loss']) == 2
    assert h['lr'][0] > h['lr'][1] > 0   # cosine decay after the warmup

def test_gaussian_head_round_trip(fold, tmp_path):
    f = make('transformer', head='gaussian', epochs=1).fit(fold)
    a = validate_predictions(f.predict(fold, 'test'))
    b = type(f).load(f.save(tmp_path / 'g')).predict(fold, 'test')
    np.testing.assert_allclose(a[Q].to_numpy(), b[Q].to_numpy(), atol=1e-6, rtol=0)

def test_real_fold_contract():
    "With the default 60-day lookback: one row per window origin x horizon, actuals as the fold's targets."
    fold = chronological_split(synthetic_feature_frame(600, seed=1), n_features=10)
    f = LSTMForecaster(units=(8,), attention_units=4, epochs=1, seed=0).fit(fold)
    pred = validate_predictions(f.predict(fold, 'test'))
    X, Y, origins = fold.windows('test')
    assert len(pred) == len(origins) * len(fold.horizons) and (pred.model == 'lstm').all()
    np.testing.assert_allclose(pred.actual.to_numpy(), Y.ravel().astype(float), equal_nan=True)
    assert f.attention_weights(X).shape == (len(X), 60)

@pytest.mark.parametrize('model', sorted(SIZES))
def test_mixed_precision_runs(model, fold):
    "float16 compute (as on a GPU) keeps a float32 head: finite, ordered quantiles; the global policy is restored."
    import keras
    f = make(model, mixed_precision=True, epochs=1).fit(fold)
    assert f.model.dtype_policy.name == 'mixed_float16' and f.model.get_layer('quantiles').dtype_policy.name == 'float32'
    validate_predictions(f.predict(fold, 'test'))
    assert keras.mixed_precision.global_policy().name == 'float32'
