"""Integration tests of `cryptoforecast.tuning` too slow for its notebook: trials logged to MLflow, a small LSTM
search with per-fold pruning, and (marked slow, needs the real data) 20 LightGBM trials on BTC's walk-forward folds
finding a setting better than the defaults."""
import os
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
import pytest
import optuna

from cryptoforecast.config import get_config
from cryptoforecast.dataset import synthetic_feature_frame, walk_forward
from cryptoforecast.tuning import tune, default_trial, params_of
from conftest import needs_data, DATA_DIR

SMALL = {'n_estimators': 30}

@pytest.fixture(scope='module')
def folds():
    return walk_forward(synthetic_feature_frame(600, seed=1), n_folds=2, test_size=40, val_size=60, min_train=200, n_features=8)

def test_trials_logged_to_mlflow(folds, tmp_path):
    import mlflow
    r = tune('lightgbm', folds[:1], n_trials=2, storage=':memory:', seed=0, model_kwargs=SMALL, progress=False,
             mlflow=True, artifacts_dir=tmp_path, plots_dir=tmp_path / 'plots')
    runs = mlflow.search_runs(experiment_names=['cryptoforecast'], output_format='list')
    parent = next(r_ for r_ in runs if r_.info.run_name == r.study.study_name)
    children = [c for c in runs if c.data.tags.get('mlflow.parentRunId') == parent.info.run_id]
    assert sorted(c.data.metrics['val_loss'] for c in children) == sorted(t.value for t in r.study.trials)
    assert children[0].data.params.keys() == default_trial('lightgbm').keys()
    assert parent.data.metrics['best_val_loss'] == pytest.approx(r.best_value)
    assert parent.data.metrics['default_val_loss'] == pytest.approx(r.default_value)
    assert (tmp_path / 'mlflow.db').exists()

@pytest.mark.slow
def test_lstm_search_reports_each_fold(folds):
    "Four LSTM fits (two trials x two folds): about two minutes on a busy CPU, nearly all of it graph tracing."
    kw = dict(epochs=1, lookback=20, patience=1)
    r = tune('lstm', folds, n_trials=2, storage=':memory:', seed=0, model_kwargs=kw, progress=False)
    trials = r.study.trials
    assert trials[0].params == default_trial('lstm')
    assert params_of('lstm', trials[0].params)['units'] == (128, 64, 32)
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert sorted(trials[0].intermediate_values) == [0, 1]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert r.best_value == min(t.value for t in done), 'the result is the best completed trial'
    assert isinstance(r.study.pruner, optuna.pruners.MedianPruner)

@pytest.mark.slow
@needs_data
def test_btc_tuned_not_worse_than_default():
    from cryptoforecast.data import load_universe
    from cryptoforecast.features import build_features, market_context
    from cryptoforecast.train import make_folds
    u = load_universe(DATA_DIR)
    cfg = get_config()
    btc = make_folds(build_features(u['BTC'], market=market_context(u), horizons=cfg.horizons), cfg, walk_forward=True)
    r = tune('lightgbm', btc, n_trials=20, storage=':memory:', progress=False)
    print(f"BTC lightgbm: default {r.default_value:.4f} best {r.best_value:.4f} ({r.improvement:.1%}) in {r.seconds:.0f} s")
    assert np.isfinite(r.default_value) and len(r.study.trials) == 20
    assert r.best_value == min(t.value for t in r.study.trials if t.value is not None)
    assert r.improvement > 0, 'twenty trials find no setting better than the defaults on BTC'

@pytest.mark.parametrize('model', ['lstm', 'transformer'])
def test_deep_default_trial_is_the_forecasters_defaults(model):
    "The default trial gives the constructor defaults; the narrowest point of the space is a valid forecaster too."
    from cryptoforecast.backtest import model_factory
    default = model_factory(model, 42).get_params()
    tuned = model_factory(model, 42, **params_of(model, default_trial(model))).get_params()
    assert tuned == default
    narrow = {**default_trial(model), **{k: 0.25 for k in ('units_scale', 'width_scale') if k in default_trial(model)}}
    model_factory(model, 42, **params_of(model, narrow))
