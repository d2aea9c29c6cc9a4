"""The MLflow registry end to end: champion/challenger aliases per coin, the pyfunc forecaster, the Keras flavor.

Every test runs against a throwaway SQLite store in its own temporary directory (via MLFLOW_TRACKING_URI), so
nothing is written to the repository. The empty database is created (migrated) once and copied per test.
"""
import pickle, shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip('mlflow')
from mlflow import MlflowClient
from cryptoforecast import tracking
from cryptoforecast.tracking import (setup_mlflow, log_forecaster, register_and_promote, model_card, VAL_METRIC,
                                     QUANTILES, quantile_col)

PREDICTION_COLUMNS = ['coin', 'origin', 'horizon', 'model', 'mean', *map(quantile_col, QUANTILES),
                      'actual', 'close_origin', 'price_mean', 'price_actual']


class ConstantForecaster:
    "A stand-in for the real Forecaster: a constant log return, with its own pickle `save`/`load`."
    name = 'constant'
    def __init__(self, coin='BTC', value=0.0, horizons=(1, 7, 30)): self.coin, self.value, self.horizons = coin, value, horizons

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        n, H = len(frame), len(self.horizons)
        out = pd.DataFrame({'coin': self.coin, 'origin': frame.index.repeat(H), 'horizon': np.tile(self.horizons, n),
                            'model': self.name, 'mean': self.value})
        for q in QUANTILES: out[quantile_col(q)] = self.value + (q - 0.5) * 0.1
        close = np.repeat(frame['close'].to_numpy(float), H)
        return out.assign(actual=np.nan, close_origin=close, price_mean=close * np.exp(self.value), price_actual=np.nan)

    def save(self, path) -> Path:
        Path(path).write_bytes(pickle.dumps(self)); return Path(path)

    @classmethod
    def load(cls, path): return pickle.loads(Path(path).read_bytes())


def feature_frame(n=5) -> pd.DataFrame:
    idx = pd.date_range('2024-03-01', periods=n, tz='UTC', name='date')
    return pd.DataFrame({'close': np.linspace(60_000, 62_000, n), 'rsi_14': np.linspace(40, 60, n)}, index=idx)


@pytest.fixture(scope='module')
def empty_db(tmp_path_factory) -> Path:
    "A migrated, empty MLflow SQLite database (creating one takes seconds; copying it takes none)."
    d = tmp_path_factory.mktemp('mlflow-template')
    tracking.ensure_store(f"sqlite:///{d / 'mlflow.db'}")   # not setup_mlflow: MLFLOW_TRACKING_URI would win over `d`
    return d / 'mlflow.db'


@pytest.fixture
def store(empty_db, tmp_path, monkeypatch) -> Path:
    "A fresh tracking store in `tmp_path`, selected through MLFLOW_TRACKING_URI as a user would."
    shutil.copy(empty_db, tmp_path / 'mlflow.db')
    monkeypatch.setenv('MLFLOW_TRACKING_URI', f"sqlite:///{tmp_path}/mlflow.db")
    # mlflow.set_registry_uri (as in the teardown below) also exports MLFLOW_REGISTRY_URI, which would win over the store
    monkeypatch.delenv('MLFLOW_REGISTRY_URI', raising=False)
    prev = mlflow.get_tracking_uri()
    uri = setup_mlflow()
    assert uri == f"sqlite:///{tmp_path}/mlflow.db"
    yield tmp_path
    mlflow.set_tracking_uri(prev); mlflow.set_registry_uri(prev)


def train_run(coin: str, val_rel_mae: float, value: float = 0.0) -> dict:
    "One 'training run': log a forecaster, register it, promote if better."
    with mlflow.start_run() as run:
        log_forecaster(ConstantForecaster(coin, value))
    res = register_and_promote(run.info.run_id, coin, val_rel_mae)
    assert res['reason'] and MlflowClient().get_model_version(f"cryptoforecast-{coin}", str(res['version'])).tags['promotion.reason'] == res['reason']
    return {k: res[k] for k in ('version', 'champion_version', 'promoted')}


def aliases(coin: str) -> dict[str, int]:
    c, name = MlflowClient(), f"cryptoforecast-{coin}"
    return {a: int(c.get_model_version_by_alias(name, a).version) for a in ('champion', 'challenger')}


def test_artifacts_next_to_the_database(store):
    exp = MlflowClient().get_experiment_by_name('cryptoforecast')
    assert exp.artifact_location == (store / 'mlruns').as_uri()
    with mlflow.start_run() as run: mlflow.log_text('x', 'x.txt')
    assert list((store / 'mlruns').rglob('x.txt')), 'artifacts must land under the store directory'
    assert run.info.experiment_id == exp.experiment_id


def test_worse_second_version_is_only_challenger(store):
    assert train_run('BTC', 0.95) == dict(version=1, champion_version=1, promoted=True)
    assert aliases('BTC') == dict(champion=1, challenger=1)
    assert train_run('BTC', 0.97) == dict(version=2, champion_version=1, promoted=False)
    assert aliases('BTC') == dict(champion=1, challenger=2)
    assert train_run('BTC', 0.95) == dict(version=3, champion_version=1, promoted=False)  # a tie does not promote
    assert train_run('BTC', 0.94) == dict(version=4, champion_version=1, promoted=False)  # nor does noise inside the 2% margin


def test_better_second_version_becomes_champion(store):
    train_run('BTC', 0.95)
    assert train_run('BTC', 0.90) == dict(version=2, champion_version=2, promoted=True)
    assert aliases('BTC') == dict(champion=2, challenger=2)
    run_id = MlflowClient().get_model_version('cryptoforecast-BTC', '2').run_id
    assert MlflowClient().get_run(run_id).data.metrics[VAL_METRIC] == 0.90


def test_coins_have_separate_champions(store):
    train_run('BTC', 0.95); train_run('ETH', 1.10)
    assert train_run('ETH', 1.05)['promoted'] and not train_run('BTC', 0.99)['promoted']
    assert aliases('ETH') == dict(champion=2, challenger=2) and aliases('BTC') == dict(champion=1, challenger=2)


def test_champion_loads_as_pyfunc_and_returns_predictions(store):
    train_run('BTC', 0.95, value=0.01)
    train_run('BTC', 0.99, value=0.02)                       # not promoted: the champion still forecasts 0.01
    model = mlflow.pyfunc.load_model('models:/cryptoforecast-BTC@champion')
    frame = feature_frame()
    for payload in (frame, frame.reset_index()):             # DatetimeIndex, or dates in a `date` column
        preds = model.predict(payload)
        assert list(preds.columns) == PREDICTION_COLUMNS
        assert len(preds) == 3 * len(frame) and set(preds.horizon) == {1, 7, 30}
        assert (preds['mean'] == 0.01).all() and (preds.coin == 'BTC').all()
        assert (pd.DatetimeIndex(preds.origin.unique()) == frame.index).all()
    challenger = mlflow.pyfunc.load_model('models:/cryptoforecast-BTC@challenger')
    assert (challenger.predict(frame)['mean'] == 0.02).all()


def test_saved_with_the_forecasters_own_save(store, tmp_path):
    saved = tracking.save_forecaster(ConstantForecaster(value=0.3), tmp_path / 'f')
    assert (saved / 'saved').exists() and not (saved / 'forecaster.pkl').exists()
    assert tracking.load_forecaster(saved).value == 0.3


def test_model_card_is_the_version_description(store):
    metrics = pd.DataFrame({'model': ['constant', 'naive'], 'horizon': [7, 7], 'mae': [0.05, 0.06], 'rel_mae': [0.83, 1.0],
                            'cov80': [0.78, np.nan], 'cov95': [0.94, np.nan]})
    card = model_card('BTC', metrics, model='constant', seed=7, features=['rsi_14'],
                      data_range=(pd.Timestamp('2020-01-01'), pd.Timestamp('2024-03-05')))
    with mlflow.start_run() as run: log_forecaster(ConstantForecaster())
    res = register_and_promote(run.info.run_id, 'BTC', 0.9, card=card)
    mv = MlflowClient().get_model_version('cryptoforecast-BTC', str(res['version']))
    assert mv.description == card and '| 7 | 0.78 | 0.94 |' in card and '2020-01-01 to 2024-03-05' in card


def test_keras_flavor_with_signature(store):
    keras = pytest.importorskip('keras')
    net = keras.Sequential([keras.Input((60, 4)), keras.layers.LSTM(4), keras.layers.Dense(3)])
    X = np.random.default_rng(0).normal(size=(4, 60, 4)).astype('float32')
    with mlflow.start_run():
        info = tracking.log_keras(net, X)
    assert info.signature is not None
    out = mlflow.pyfunc.load_model(info.model_uri).predict(X)
    np.testing.assert_allclose(np.asarray(out), net.predict(X, verbose=0), rtol=1e-5, atol=1e-6)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    "Run `cryptoforecast *argv` in this process: exit code, stdout, stderr."
    from cryptoforecast.cli import main
    code = main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _trained_with_moves(store_dir: Path, scores=(0.95, 0.90, 0.85)) -> Path:
    "Versions of BTC trained with `scores` (each better: each promoted), every promotion recorded as a `train` move."
    from cryptoforecast import live
    forecasts = live.store_path(store_dir)
    before = None                                            # the first version is the first champion: moved from none
    for score in scores:
        r = train_run('BTC', score)
        assert r['promoted']
        live.record_move(forecasts, 'BTC', 'train', before, r['version'], {'val_rel_mae': score})
        before = r['version']
    return forecasts


def test_rollback_walks_back_through_the_moves_and_never_toggles(store, capsys):
    import json
    from cryptoforecast import live
    forecasts = _trained_with_moves(store)
    assert aliases('BTC')['champion'] == 3
    assert [live.rollback('BTC', forecasts)['champion'] for _ in range(2)] == [2, 1]   # one step further back each time
    assert aliases('BTC')['champion'] == 1
    code, out, err = _cli(capsys, 'registry', 'rollback', '--coin', 'BTC', '--artifacts-dir', store)
    assert code == 2 and err.startswith('error:') and err.strip().count('\n') == 0, err      # nothing left to undo
    assert 'no champion move left to undo' in err and aliases('BTC')['champion'] == 1
    moves = live.champion_moves(forecasts, 'BTC')
    assert moves['action'].tolist() == ['train'] * 3 + ['rollback'] * 2
    assert [json.loads(e)['undoes'] for e in moves['evidence'].iloc[3:]] == [3, 2]       # the ids of the moves undone
    # a new move after the rollbacks is the next one undone
    live.record_move(forecasts, 'BTC', 'promote', 1, 3, {})
    MlflowClient().set_registered_model_alias('cryptoforecast-BTC', 'champion', '3')
    assert live.rollback('BTC', forecasts)['champion'] == 1


def test_rollback_to_a_deleted_version_is_refused_in_one_line(store, capsys):
    forecasts = _trained_with_moves(store, scores=(0.95, 0.90))
    MlflowClient().delete_model_version('cryptoforecast-BTC', '1')
    code, out, err = _cli(capsys, 'registry', 'rollback', '--coin', 'BTC', '--artifacts-dir', store)
    assert code == 2 and err.startswith('error:') and err.strip().count('\n') == 0 and 'Traceback' not in err, err
    assert 'cannot roll back to v1: it was deleted from the registry' in err, err
    assert aliases('BTC')['champion'] == 2
    from cryptoforecast import live
    assert live.champion_moves(forecasts, 'BTC')['action'].tolist() == ['train', 'train']   # nothing recorded


def test_history_shows_every_version_its_aliases_score_and_reason_then_the_moves(store, capsys):
    from cryptoforecast import live
    forecasts = _trained_with_moves(store, scores=(0.95,))
    train_run('BTC', 0.97)                                   # worse: kept as challenger (no move)
    code, out, err = _cli(capsys, 'registry', 'history', '--coin', 'BTC', '--artifacts-dir', store)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == 'BTC: 2 registered versions', out
    v1 = next(l for l in lines if l.strip().startswith('v1 '))
    v2 = next(l for l in lines if l.strip().startswith('v2 '))
    assert 'champion' in v1 and 'val_rel_mae 0.9500' in v1 and 'promoted to champion: first version of the model' in v1, out
    assert v2.split()[1] == 'challenger' and 'val_rel_mae 0.9700' in v2, out
    assert 'kept champion v1' in v2, out
    assert 'BTC: champion moves, oldest first' in out and 'train    new -> v1' in out, out
    history = live.version_history('BTC')
    assert history['version'].tolist() == [1, 2] and history['aliases'].tolist() == ['champion', 'challenger']
