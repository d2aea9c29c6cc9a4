"""Faults of the daily loop that need no trained model: a damaged forecast store, an artifacts folder that is a file,
and a monitor judging rows with too few realised forecasts.

The store tests run the installed command on a store damaged as a disk or a copy would damage it (cut in half, or
overwritten with garbage); the monitor test forecasts nothing: it stores one realised forecast by hand and gives
the monitor a stand-in for the registered model, so it runs in seconds without MLflow models.
"""
import json, shutil, sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from cryptoforecast import live
from cryptoforecast.metrics import QUANTILES, quantile_col

SAMPLE_BTC = ROOT / 'cryptoforecast' / 'sample' / 'Binance_BTCUSDT_d.csv.gz'


def toy_rows(n: int, origin='2020-01-01', close=1.0, spread=0.1) -> pd.DataFrame:
    "`n` champion v1 forecasts of BTC, one a day from `origin`, horizon 1, quantiles `spread` apart around zero."
    rows = pd.DataFrame({'coin': 'BTC', 'origin': pd.date_range(origin, periods=n).strftime('%Y-%m-%d'), 'horizon': 1,
                         'alias': 'champion', 'model_version': 1, 'model': 'toy', 'mean': 0.0, 'sigma': 0.1, 'point': 0.0,
                         'close_origin': close, 'run_id': None, 'as_of': None, 'created_at': 'now'})
    for q in QUANTILES: rows[quantile_col(q)] = (q - 0.5) * spread
    return rows


def damaged_store(art: Path, how: str) -> Path:
    "A real store of 2000 rows under `art`, then cut to half its size or overwritten with garbage bytes."
    store = art / live.STORE_FILE
    live.insert_forecasts(store, toy_rows(2000))
    live.record_move(store, 'BTC', 'train', None, 1, {})
    with sqlite3.connect(store) as con: con.execute('pragma wal_checkpoint(truncate)')   # everything in the main file
    raw = store.read_bytes()
    store.write_bytes(raw[:len(raw) // 2] if how == 'truncated' else b'\x13garbage\x00' * 2000)
    for side in ('-wal', '-shm'): Path(f"{store}{side}").unlink(missing_ok=True)
    return store


COMMANDS = {'monitor': ['monitor'], 'registry history': ['registry', 'history', '--coin', 'BTC'],
            'registry rollback': ['registry', 'rollback', '--coin', 'BTC'], 'forecast': ['forecast', '--crypto', 'BTC']}


def cli(capsys, *argv) -> tuple[int, str]:
    "Run `cryptoforecast *argv` in this process: its exit code and what it wrote on stderr."
    from cryptoforecast.cli import main
    try: code = main([*map(str, argv)])
    except SystemExit as e: code = e.code
    return code, capsys.readouterr().err


def assert_one_line_about_damage(code: int, err: str, store: Path):
    assert code == 2, err[-2000:]
    assert err.startswith('error:') and err.strip().count('\n') == 0 and 'Traceback' not in err, err[-2000:]
    assert f"{store}: the forecast store is damaged" in err and 'move it aside' in err, err


@pytest.mark.parametrize('how', ['truncated', 'garbage'])
@pytest.mark.parametrize('command', list(COMMANDS))
def test_a_damaged_store_is_one_line_naming_the_file_and_is_kept(tmp_path, capsys, how, command):
    store = damaged_store(tmp_path / 'art', how)
    before = store.read_bytes()
    assert_one_line_about_damage(*cli(capsys, *COMMANDS[command], '--artifacts-dir', tmp_path / 'art'), store)
    assert store.read_bytes() == before                                    # never deleted nor rewritten


def test_a_damaged_store_from_the_installed_command(tmp_path):
    store = damaged_store(tmp_path / 'art', 'truncated')
    out = run_cli('forecast', '--crypto', 'BTC', '--artifacts-dir', tmp_path / 'art', cwd=tmp_path,
                  env={'CRYPTOFORECAST_CACHE_DIR': str(tmp_path / 'cache')})
    assert_one_line_about_damage(out.returncode, out.stderr, store)


@pytest.mark.parametrize('command', list(COMMANDS))
def test_an_artifacts_folder_that_is_a_file_is_one_line(tmp_path, capsys, command):
    (tmp_path / 'afile').write_text('not a folder')
    code, err = cli(capsys, *COMMANDS[command], '--artifacts-dir', tmp_path / 'afile')
    assert code == 2 and err.strip().count('\n') == 0, err[-2000:]
    assert 'afile: is a file, not a folder' in err, err
    assert (tmp_path / 'afile').read_text() == 'not a folder'


def test_a_store_written_by_concurrent_openers_of_an_old_store_gains_in_sample_once(tmp_path):
    "A store made before `in_sample` existed, opened by several processes at once: each sees the column added once."
    from concurrent.futures import ProcessPoolExecutor
    store = tmp_path / live.STORE_FILE
    with sqlite3.connect(store) as con: con.execute(live._SCHEMA[0].replace(', in_sample integer', ''))
    with ProcessPoolExecutor(4) as pool:
        counts = list(pool.map(live.insert_forecasts, [store] * 4, [toy_rows(5, origin=f"2020-0{i}-01") for i in range(1, 5)]))
    assert counts == [5] * 4
    f = live.read_forecasts(store)
    assert len(f) == 20 and f['in_sample'].isna().all()


class _Unranked:
    "A stand-in for a registered model: it ranks no feature, so the monitor builds no feature frame for it."
    fold_meta_ = dict(features=[])
    horizons = (1, 7, 30)


@pytest.fixture
def one_realised_forecast(tmp_path, monkeypatch):
    "An artifacts folder whose store holds one realised forecast of BTC's sample, missing the outcome (cov80 0)."
    from cryptoforecast.data import load_universe
    data = tmp_path / 'data'
    data.mkdir()
    shutil.copy(SAMPLE_BTC, data)
    close = load_universe(data, ['BTC'])['BTC']['close']
    origin = close.index[-30]
    rows = toy_rows(1, origin=str(origin.date()), close=float(close.loc[origin]) * 10, spread=0.01)  # far off: missed
    live.insert_forecasts(live.store_path(tmp_path / 'art'), rows)
    monkeypatch.setattr(live, 'load_version', lambda coin, version: _Unranked())
    monkeypatch.setenv('CRYPTOFORECAST_CACHE_DIR', str(tmp_path / 'cache'))
    return tmp_path / 'art', data, str(close.index[-1].date())


def test_monitor_says_not_enough_realised_forecasts_instead_of_healthy(one_realised_forecast, capsys):
    art, data, last = one_realised_forecast
    code = live.monitor_cli(['--artifacts-dir', str(art), '--data-dir', str(data), '--as-of', last])
    out = capsys.readouterr().out
    assert code == 0, out
    assert 'not enough realised forecasts (1 of 20)' in out and '0 ok, 0 with an alert, 1 not judged' in out, out
    report = json.loads((art / 'monitor' / f"{last}.json").read_text())
    row = report['rows'][0]
    assert row['n'] == 1 and row['cov80'] == 0.0 and row['status'] == 'insufficient', row
    assert row['verdict'] == 'not enough realised forecasts (1 of 20)'
    assert report['statuses'] == dict(insufficient=1, ok=0, alert=0)
    assert 'not enough realised forecasts (1 of 20)' in (art / 'monitor' / f"{last}.md").read_text()
