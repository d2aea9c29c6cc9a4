"""The data layer on real files, on hand-made broken inputs, and through the CLI."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoforecast.data import (DOLLAR_QUOTES, IntradayData, data_files, read_ohlcv, scan)
from conftest import DATA_DIR, ROOT, needs_data, run_cli

FIXTURES = ROOT/'tests'/'fixtures'
REAL_FILES = data_files(DATA_DIR) if DATA_DIR.exists() else []

def check_canonical(df: pd.DataFrame):
    "The invariants every OHLCV frame must satisfy."
    assert df.index.name == 'date' and str(df.index.tz) == 'UTC'
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert (np.diff(df.index.as_unit('s').asi8) == 86_400).all(), "daily rows without holes"
    assert (df.index == df.index.floor('D')).all()
    for c in ['open', 'high', 'low', 'close', 'volume']: assert df[c].dtype == float, c
    assert df[['open', 'high', 'low', 'close']].notna().all().all()
    assert (df['close'] > 0).all() and (df['low'] > 0).all()
    assert (df['high'] >= df[['open', 'close', 'low']].max(axis=1) - 1e-12).all()
    assert (df['low'] <= df[['open', 'close', 'high']].min(axis=1) + 1e-12).all()
    assert (df['volume'] >= 0).all()
    assert df['filled'].dtype == bool
    for k in ('symbol', 'quote', 'source', 'path', 'sha256'): assert df.attrs[k], k

@needs_data
@pytest.mark.parametrize('path', REAL_FILES, ids=[str(p.relative_to(DATA_DIR)) for p in REAL_FILES])
def test_every_real_file_loads_and_validates(path, tmp_path):
    try: df = read_ohlcv(path, cache_dir=tmp_path)
    except IntradayData as e:
        assert 'hourly' in str(path) or 'intraday' in e.problem
        return
    check_canonical(df)
    rep = df.attrs['report']
    assert rep['rows_out'] == len(df) and rep['symbol'] == df.attrs['symbol']
    # nothing dropped silently: rows in = rows out - filled + every removed row counted
    removed = sum(rep['counts'].get(k, 0) for k in ('leading_empty', 'duplicate_rows', 'zero_close', 'trimmed_rows'))
    assert rep['rows_in'] - removed + rep['counts'].get('filled_days', 0) == len(df)

BROKEN = {
    'empty': 'empty file', 'header_only': 'header only', 'wrong_delimiter': 'wrong delimiter',
    'unparseable_dates': "unparseable date 'not-a-date'", 'negative_prices': 'negative price on 2024-01-21',
    'high_below_low': 'high < low on 2024-01-13', 'duplicated_dates_conflicting': 'duplicated date 2024-01-11 with conflicting values',
    'mixed_timestamp_units': 'no plausible date', 'truncated_last_line': 'truncated last line', 'non_utf8': 'not UTF-8',
    'html_error_page': 'HTML', 'not_a_zip': 'not a valid zip archive', 'unknown_columns': 'unrecognised columns',
    'too_short': 'only 10 usable daily rows', 'only_empty_prices': 'no row has a price', 'non_numeric_close': "'N/A?' is not a number",
}

def test_broken_corpus_is_complete():
    assert sorted(p.name for p in (FIXTURES/'broken').iterdir()) == sorted(BROKEN)

@pytest.mark.parametrize('case', sorted(BROKEN))
def test_broken_input_gives_one_line_error(case, tmp_path):
    folder = FIXTURES/'broken'/case
    (f,) = list(folder.iterdir())
    cache = tmp_path/'cache'
    r = run_cli('data', 'check', '--data-dir', folder, cwd=tmp_path, env={'CRYPTOFORECAST_CACHE_DIR': str(cache)})
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {folder}/{f.name}: ") and BROKEN[case] in lines[0], lines[0]
    assert 'Traceback' not in r.stdout + r.stderr
    assert not cache.exists() or not any(cache.iterdir()), "a failing file must write nothing to the cache"

def test_repairable_quirks_are_repaired_and_counted(tmp_path):
    df = read_ohlcv(FIXTURES/'repairable'/'Binance_XYZUSDT_d.csv', cache_dir=tmp_path)
    check_canonical(df)
    assert (df.attrs['symbol'], df.attrs['quote'], df.attrs['source']) == ('XYZ', 'USDT', 'cryptodatadownload')
    assert df.attrs['report']['counts'] == {'duplicate_rows': 1, 'zero_close': 1, 'range_widened': 1, 'filled_days': 3}
    assert len(df) == 60 and df['filled'].sum() == 3
    assert df.loc['2024-01-21', 'close'] == df.loc['2024-01-20', 'close']  # filled from the previous close
    r = run_cli('data', 'check', '--data-dir', FIXTURES/'repairable', cwd=tmp_path)
    assert r.returncode == 0 and 'filled_days=3' in r.stdout

def test_cache_is_keyed_by_content(tmp_path):
    src = FIXTURES/'repairable'/'Binance_XYZUSDT_d.csv'
    f = tmp_path/'Binance_XYZUSDT_d.csv'
    f.write_bytes(src.read_bytes())
    a = read_ohlcv(f, cache_dir=tmp_path/'c')
    assert len(list((tmp_path/'c').glob('*.parquet'))) == 1
    b = read_ohlcv(f, cache_dir=tmp_path/'c')
    pd.testing.assert_frame_equal(a, b)
    f.write_text(src.read_text().replace('16.10', '16.20'))  # an edited file is never served stale
    c = read_ohlcv(f, cache_dir=tmp_path/'c')
    assert len(list((tmp_path/'c').glob('*.parquet'))) == 2 and c['close'].iloc[-1] == pytest.approx(16.2)

@pytest.fixture(scope='module')
def universe(tmp_path_factory):
    if not DATA_DIR.exists(): pytest.skip('no real data')
    return scan(DATA_DIR, cache_dir=tmp_path_factory.mktemp('cache'))

def test_universe_choice_rule(universe):
    u = universe
    assert len(u.coins) >= 100
    assert sorted(Path(p).name for p, _ in u.skipped) == ['BTC-USD-1h.csv.gz', 'ETH-USD-1h.csv.gz']
    # quotes are never mixed: every coin's frame comes from one file with one quote
    for sym, df in u.coins.items():
        assert df.attrs['symbol'] == sym
        if any(a.attrs['quote'] in DOLLAR_QUOTES for a in [df] + u.alternatives[sym]):
            assert df.attrs['quote'] in DOLLAR_QUOTES, sym
    # AR comes from Binance_ARBUSD_d.csv (AR quoted in BUSD, not Arbitrum)
    assert Path(u.coins['AR'].attrs['path']).name == 'Binance_ARBUSD_d.csv' and u.coins['AR'].attrs['quote'] == 'BUSD'
    # AAVE: the BTC-quoted CoinGecko file is never chosen over dollar-quoted ones
    assert u.coins['AAVE'].attrs['quote'] in DOLLAR_QUOTES
    # Yahoo's UNI-USD is another token: it is set aside and the disagreement reported
    assert Path(u.coins['UNI'].attrs['path']).name == 'Binance_UNIUSDT_d.csv'
    assert any(s == 'UNI' and Path(o).name == 'UNI-USD_1d.csv' for s, _, o, _ in u.conflicts)
    # reaching the present wins: BTC and ETH come from the files that end in 2026
    assert u.coins['BTC'].index[-1] >= pd.Timestamp('2026-01-01', tz='UTC')
    assert 'LUNA' in u.coins and 'LUNA1' not in u.coins

@needs_data
def test_data_list_and_check_cli(tmp_path):
    r = run_cli('data', 'list', '--data-dir', DATA_DIR, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) >= 100
    sym, first, last, rows, source = lines[0].split(' ', 4)
    assert pd.Timestamp(first) < pd.Timestamp(last) and int(rows) > 0 and ':' in source
    r = run_cli('data', 'check', '--data-dir', DATA_DIR, 'BTC', 'ETH', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'repaired rows by kind' in r.stdout and 'Binance_BTCUSDT_d.csv' in r.stdout
    r = run_cli('data', 'check', '--data-dir', DATA_DIR, 'NOSUCHCOIN', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {DATA_DIR}: no data for coin NOSUCHCOIN"

def test_download_cli_replays_recorded_responses(tmp_path):
    "The real client code path, answered by recordings we wrote (no network in tests)."
    from cryptoforecast.sources import BINANCE_URL, record
    start = pd.Timestamp('2024-01-01', tz='UTC')
    t0 = int(start.timestamp() * 1000)
    kl = []
    for i in range(45):
        t, px = t0 + i*86_400_000, 100 + i
        kl.append([t, str(px), str(px+2), str(px-1), str(px+1), '10', t + 86_399_999, str(10*px), 5, '5', '50', '0'])
    rec = tmp_path/'rec'
    record(rec, BINANCE_URL, {'symbol': 'ETHUSDT', 'interval': '1d', 'startTime': t0, 'limit': 1000}, kl)
    out = tmp_path/'raw'
    r = run_cli('data', 'download', '--source', 'binance', '--coins', 'ETH', '--start', '2024-01-01', '--data-dir', out,
                cwd=tmp_path, env={'CRYPTOFORECAST_REPLAY_DIR': str(rec)})
    assert r.returncode == 0, r.stderr
    assert (out/'binance'/'ETHUSDT_1d.csv').exists()
    r = run_cli('data', 'list', '--data-dir', out, cwd=tmp_path)
    assert r.stdout.split()[:4] == ['ETH', '2024-01-01', '2024-02-14', '45']
    # a request with no recording behaves like being offline: one clear line, exit 2
    r = run_cli('data', 'download', '--source', 'binance', '--coins', 'BTC', '--data-dir', out,
                cwd=tmp_path, env={'CRYPTOFORECAST_REPLAY_DIR': str(rec)})
    assert r.returncode == 2 and 'offline' in r.stderr and len(r.stderr.strip().splitlines()) == 1
