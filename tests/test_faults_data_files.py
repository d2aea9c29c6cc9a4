"""Faults of the files a command is pointed at: forcing a coin's file in `data check`, paths in argument errors,
a cache that must know which file it read, one bad file among good ones, and data folders that are no folder."""
import os, shutil
from pathlib import Path

import pandas as pd
import pytest

import cryptoforecast.data as data
from cryptoforecast.data import read_ohlcv, scan
from conftest import DATA_DIR, ROOT, needs_data, run_cli

SAMPLE = ROOT/'cryptoforecast'/'sample'

def env(tmp_path, **extra):
    "A private cache per test, no data folder from the environment unless given."
    return {'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache'), 'CRYPTOFORECAST_DATA_DIR': '', **extra}

def one_error_line(r, *needles) -> str:
    "Exit 2, one `error:` line on stderr containing `needles`, no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]

def sample_folder(folder: Path, coins=('BTC', 'ETH')) -> Path:
    "The embedded sample's files of `coins`, copied into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    for c in coins: shutil.copy(SAMPLE/f"Binance_{c}USDT_d.csv.gz", folder)
    return folder

def yahoo_csv(path: Path, close, start='2024-01-01') -> Path:
    "A Yahoo-style daily file (no symbol column: the coin comes from the file name)."
    dates = pd.date_range(start, periods=len(close), freq='D').strftime('%Y-%m-%d')
    df = pd.DataFrame(dict(datetime=dates, open=close, high=[c * 1.01 for c in close], low=[c * 0.99 for c in close],
                           close=close, volume=1e6))
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path

def with_bad_field(path: Path, column: str, value: str, row: int = 5) -> Path:
    "`path` with one field replaced by `value` (a text in a price column, a date that does not exist...)."
    df = pd.read_csv(path, dtype=str)
    df.loc[row, column] = value
    df.to_csv(path, index=False)
    return path

# 1. `data check --source COIN=FILE` ---------------------------------------------------------------------------------

def conflicting_eth(tmp_path) -> tuple[Path, Path]:
    "The sample's BTC and ETH, and a second ETH file priced 1000 times lower: the two ETH files disagree."
    d = sample_folder(tmp_path/'raw')
    low = yahoo_csv(d/'ETH-USD_1d.csv', [3.] * 400, start='2023-01-01')
    return d, low

def test_data_check_takes_source_for_a_coin(tmp_path):
    d, low = conflicting_eth(tmp_path)
    r = run_cli('data', 'check', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 2 and '--source ETH=FILE' in r.stderr, r.stderr
    good = d/'Binance_ETHUSDT_d.csv.gz'
    r = run_cli('data', 'check', '--data-dir', d, '--source', f"ETH={good}", cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0, r.stderr
    chosen = [l for l in r.stdout.splitlines() if l.startswith('* ')]
    assert any('Binance_ETHUSDT_d.csv.gz' in l for l in chosen) and not any('ETH-USD_1d.csv' in l for l in chosen), r.stdout
    assert 'CONFLICT' not in r.stdout
    r = run_cli('data', 'check', '--data-dir', d, '--source', f"ETH={low}", 'ETH', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0 and any('ETH-USD_1d.csv' in l for l in r.stdout.splitlines() if l.startswith('* ')), r.stdout

def test_data_check_source_outside_the_folder_and_of_another_coin(tmp_path):
    d, _ = conflicting_eth(tmp_path)
    elsewhere = shutil.copy(SAMPLE/'Binance_ETHUSDT_d.csv.gz', tmp_path/'Binance_ETHUSDT_d.csv.gz')
    r = run_cli('data', 'check', '--data-dir', d, '--source', f"ETH={elsewhere}", 'ETH', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0 and str(elsewhere) in r.stdout, r.stdout + r.stderr
    r = run_cli('data', 'check', '--data-dir', d, '--source', f"ETH={d/'Binance_BTCUSDT_d.csv.gz'}", cwd=tmp_path, env=env(tmp_path))
    one_error_line(r, 'holds BTC, not ETH')

@needs_data
def test_data_check_on_the_real_data_with_uni_forced(tmp_path):
    uni = DATA_DIR/'cryptodatadownload'/'Binance_UNIUSDT_d.csv'
    r = run_cli('data', 'check', '--data-dir', DATA_DIR, '--source', f"UNI={uni}", cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(l.startswith('* cryptodatadownload/Binance_UNIUSDT_d.csv') for l in r.stdout.splitlines())

# 2. argument errors keep a path as it was typed --------------------------------------------------------------------

@pytest.mark.parametrize('args, shown', [
    (['data', 'check', 'Uni=/Tmp/Some/Prices.csv'], 'Uni=/Tmp/Some/Prices.csv'),
    (['data', 'check', 'BTC,eth/x'], 'eth/x'),
    (['backtest', '--coins', 'BTC', '--source', './Yahoo/UNI-usd.csv'], './Yahoo/UNI-usd.csv'),
    (['backtest', '--coins', 'BTC', '--source', 'Data/Raw=/Tmp/x.csv'], 'Data/Raw'),
    (['train', '--crypto', 'BTC', '--source', 'UNI,BTC=/Tmp/Xy.csv'], 'UNI,BTC'),
    (['train', '--crypto', 'BTC', '--source', '=/Tmp/Xy.csv'], '=/Tmp/Xy.csv'),
    (['data', 'check', '--source', 'Uni=/No/Such/File.csv'], '/No/Such/File.csv'),
])
def test_argument_errors_never_change_the_case_of_a_path(tmp_path, args, shown):
    line = one_error_line(run_cli(*args, cwd=tmp_path, env=env(tmp_path)), shown)
    assert shown.upper() not in line or shown.upper() == shown, line

def test_coin_argument_with_a_file_points_at_source(tmp_path):
    line = one_error_line(run_cli('data', 'check', 'UNI=/tmp/x.csv', cwd=tmp_path, env=env(tmp_path)))
    assert '--source' in line, line

# 3. the cache knows which file it read -------------------------------------------------------------------------

def test_renamed_file_gets_the_ticker_of_its_new_name(tmp_path):
    f = yahoo_csv(tmp_path/'raw'/'BTC-USD_1d.csv', [10. + i % 7 for i in range(60)])
    assert read_ohlcv(f, cache_dir=tmp_path/'c').attrs['symbol'] == 'BTC'
    g = f.rename(f.with_name('ETH-USD_1d.csv'))
    got = read_ohlcv(g, cache_dir=tmp_path/'c')
    assert got.attrs['symbol'] == 'ETH' and got.attrs['report']['symbol'] == 'ETH'
    assert list(scan(tmp_path/'raw', cache_dir=tmp_path/'c').coins) == ['ETH']

def test_files_with_identical_bytes_stay_two_coins(tmp_path):
    f = yahoo_csv(tmp_path/'raw'/'BTC-USD_1d.csv', [10. + i % 7 for i in range(60)])
    shutil.copy(f, f.with_name('ETH-USD_1d.csv'))
    u = scan(tmp_path/'raw', cache_dir=tmp_path/'c')
    assert sorted(u.coins) == ['BTC', 'ETH']
    assert {s: Path(df.attrs['path']).name for s, df in u.coins.items()} == {'BTC': 'BTC-USD_1d.csv', 'ETH': 'ETH-USD_1d.csv'}
    u = scan(tmp_path/'raw', cache_dir=tmp_path/'c')  # and so from the cache
    assert sorted(u.coins) == ['BTC', 'ETH'] and len(list((tmp_path/'c').glob('*.parquet'))) == 2

def test_symlinked_file_is_read_under_its_own_name(tmp_path):
    f = yahoo_csv(tmp_path/'raw'/'BTC-USD_1d.csv', [10. + i % 7 for i in range(60)])
    read_ohlcv(f, cache_dir=tmp_path/'c')
    link = tmp_path/'raw'/'ETH-USD_1d.csv'
    link.symlink_to(f)
    assert read_ohlcv(link, cache_dir=tmp_path/'c').attrs['symbol'] == 'ETH'

def test_renamed_file_through_the_cli(tmp_path):
    d = sample_folder(tmp_path/'raw', ('BTC',))
    f = yahoo_csv(d/'XYZ-USD_1d.csv', [10. + i % 7 for i in range(60)])
    assert run_cli('data', 'list', '--data-dir', d, cwd=tmp_path, env=env(tmp_path)).stdout.split()[::5] == ['BTC', 'XYZ']
    f.rename(f.with_name('ABC-USD_1d.csv'))
    r = run_cli('data', 'list', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0 and [l.split()[0] for l in r.stdout.splitlines()] == ['ABC', 'BTC'], r.stdout + r.stderr

# 4. one bad file never stops the other coins -----------------------------------------------------------------------

BAD_FIELDS = [('close', 'abc', "column 'close': 'abc' is not a number (row 6)"),
              ('high', '12,5', 'not a number'),
              ('datetime', '2024-02-30', "unparseable date '2024-02-30' (row 6)"),
              ('datetime', '2099-01-01', "implausible date '2099-01-01'")]

def folder_with_one_bad_file(tmp_path, column, value) -> tuple[Path, Path]:
    "The sample's BTC and ETH files and XYZ-USD_1d.csv with one malformed field."
    d = sample_folder(tmp_path/'raw')
    bad = with_bad_field(yahoo_csv(d/'XYZ-USD_1d.csv', [10. + i % 7 for i in range(400)], start='2023-01-01'), column, value)
    return d, bad

def warning_lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if l.startswith('warning: ')]

def assert_left_out_with_one_line(r, bad: Path, reason: str):
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and 'UserWarning' not in r.stderr, r.stderr
    (line,) = [l for l in warning_lines(r.stderr) if bad.name in l]
    assert str(bad) in line and reason in line and 'left out' in line, line

@pytest.mark.parametrize('column, value, reason', BAD_FIELDS)
def test_data_list_lists_the_good_coins_and_names_the_bad_file(tmp_path, column, value, reason):
    d, bad = folder_with_one_bad_file(tmp_path, column, value)
    r = run_cli('data', 'list', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    assert_left_out_with_one_line(r, bad, reason)
    assert [l.split()[0] for l in r.stdout.splitlines()] == ['BTC', 'ETH']

@pytest.mark.parametrize('column, value, reason', BAD_FIELDS[:1] + BAD_FIELDS[2:3])
def test_data_check_reports_the_bad_file_and_checks_the_others(tmp_path, column, value, reason):
    d, bad = folder_with_one_bad_file(tmp_path, column, value)
    r = run_cli('data', 'check', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    line = one_error_line(r, str(bad), reason)
    assert line.startswith(f"error: {bad}:")
    assert {l.split()[1] for l in r.stdout.splitlines() if l.startswith('* ')} == {'Binance_BTCUSDT_d.csv.gz', 'Binance_ETHUSDT_d.csv.gz'}
    assert run_cli('data', 'check', '--data-dir', d, 'BTC', cwd=tmp_path, env=env(tmp_path)).returncode == 2  # every file is checked

def test_features_and_backtest_run_on_the_good_coins(tmp_path):
    d, bad = folder_with_one_bad_file(tmp_path, 'close', 'abc')
    r = run_cli('features', '--data-dir', d, 'BTC', '--out', tmp_path/'f.parquet', cwd=tmp_path, env=env(tmp_path))
    assert_left_out_with_one_line(r, bad, 'is not a number')
    assert (tmp_path/'f.parquet').exists()
    r = run_cli('backtest', '--data-dir', d, '--all', '--models', 'naive', '--folds', '1', '--out', tmp_path/'bt.parquet',
                cwd=tmp_path, env=env(tmp_path))
    assert_left_out_with_one_line(r, bad, 'is not a number')
    assert sorted(pd.read_parquet(tmp_path/'bt.parquet')['coin'].unique()) == ['BTC', 'ETH']

def test_load_universe_warns_once_per_bad_file(tmp_path):
    d, bad = folder_with_one_bad_file(tmp_path, 'close', 'abc')
    yahoo_csv(d/'QQQ-USD_1d.csv', [1.] * 10)  # too short: a second bad file, a second warning
    with pytest.warns(data.DataWarning) as got:
        u = data.load_universe(d, cache_dir=tmp_path/'c')
    assert sorted(u) == ['BTC', 'ETH']
    msgs = sorted(str(w.message) for w in got)
    assert len(msgs) == 2 and msgs[0].startswith(f"{d/'QQQ-USD_1d.csv'}: only") and msgs[1].startswith(f"{bad}: column 'close'")
    assert all(m.endswith('; left out') for m in msgs)

def test_unreadable_file_is_left_out_with_its_reason(tmp_path, monkeypatch, capsys):
    from cryptoforecast.data_cli import data_list
    d = sample_folder(tmp_path/'raw')
    locked = d/'Binance_ETHUSDT_d.csv.gz'
    real = data.file_sha256
    def no_read(path):
        if Path(path) == locked: raise PermissionError(13, 'Permission denied')
        return real(path)
    monkeypatch.setattr(data, 'file_sha256', no_read)
    monkeypatch.setenv('CRYPTOFORECAST_CACHE_DIR', str(tmp_path/'c'))
    with pytest.warns(data.DataWarning, match='Permission denied'):
        assert data_list(d) == 0
    assert [l.split()[0] for l in capsys.readouterr().out.splitlines()] == ['BTC']

@pytest.mark.skipif(os.geteuid() == 0, reason='root reads files whatever their mode')
def test_unreadable_file_through_the_cli(tmp_path):
    d = sample_folder(tmp_path/'raw')
    (d/'Binance_ETHUSDT_d.csv.gz').chmod(0)
    r = run_cli('data', 'list', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    assert_left_out_with_one_line(r, d/'Binance_ETHUSDT_d.csv.gz', 'cannot read file')

# 5. a data folder that is no folder --------------------------------------------------------------------------------

@pytest.mark.parametrize('argv, how, what', [(argv, how, 'price file') for how in ('argument', 'environment') for argv in
                                              (['data', 'list'], ['data', 'check'], ['features', 'BTC'],
                                               ['backtest', '--coins', 'BTC', '--models', 'naive'])]
                                             + [(['data', 'list'], 'environment', 'empty file')])
def test_data_dir_that_is_a_file_is_one_line(tmp_path, argv, how, what):
    f = tmp_path/'prices.csv'
    if what == 'price file': shutil.copy(SAMPLE/'Binance_BTCUSDT_d.csv.gz', f)
    else: f.touch()
    extra = {'CRYPTOFORECAST_DATA_DIR': str(f)} if how == 'environment' else {}
    args = argv + (['--data-dir', f] if how == 'argument' else [])
    one_error_line(run_cli(*args, cwd=tmp_path, env=env(tmp_path, **extra)), str(f), 'not a folder')

def test_data_dir_under_a_file_is_one_line(tmp_path):
    (tmp_path/'afile').touch()
    one_error_line(run_cli('data', 'list', '--data-dir', tmp_path/'afile'/'raw', cwd=tmp_path, env=env(tmp_path)), 'afile')

@pytest.mark.parametrize('how', ['argument', 'under a file', 'environment'])
def test_download_into_a_file_is_one_line(tmp_path, how):
    from cryptoforecast.sources import BINANCE_URL, record
    t0 = int(pd.Timestamp('2024-01-01', tz='UTC').timestamp() * 1000)
    kl = [[t0 + i*86_400_000, '100', '102', '99', '101', '10', t0 + i*86_400_000 + 86_399_999, '1000', 5, '5', '50', '0']
          for i in range(40)]
    record(tmp_path/'rec', BINANCE_URL, {'symbol': 'ETHUSDT', 'interval': '1d', 'startTime': t0, 'limit': 1000}, kl)
    (tmp_path/'afile').touch()
    target = tmp_path/'afile'/'raw' if how == 'under a file' else tmp_path/'afile'
    extra = {'CRYPTOFORECAST_REPLAY_DIR': str(tmp_path/'rec')}
    if how == 'environment': extra['CRYPTOFORECAST_DATA_DIR'] = str(target)
    args = ['data', 'download', '--source', 'binance', '--coins', 'ETH', '--start', '2024-01-01']
    r = run_cli(*args, *([] if how == 'environment' else ['--data-dir', target]), cwd=tmp_path, env=env(tmp_path, **extra))
    one_error_line(r, str(tmp_path/'afile'), 'is a file, not a folder')

# 6. a frame that never was a file meets the readers' rules ---------------------------------------------------------

@pytest.mark.parametrize('col, value, why', [('close', float('inf'), 'not a finite number'), ('close', 1e300, 'price above'),
                                             ('high', 1e300, 'price above'), (None, None, 'implausible date 2099-01-01')])
def test_validate_ohlcv_refuses_rows_no_file_could_hold(col, value, why):
    from cryptoforecast.config import DataRules
    days = pd.date_range('2099-01-01' if col is None else '2024-01-01', periods=40, freq='D', tz='UTC')
    df = pd.DataFrame({c: 10.0 for c in ['open', 'high', 'low', 'close', 'volume']}, index=days)
    if col: df.loc[days[20], col] = value
    with pytest.raises(data.DataError, match=why): data.validate_ohlcv(df, 'payload', DataRules())
