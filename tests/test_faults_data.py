"""Fault injection on the data layer: first run without data, the cache (location, corruption, concurrency), wrong data
that used to pass, downloads that answer oddly, and bad command-line arguments."""
import email.utils, fnmatch, gzip, json, shutil, subprocess, sys, time, tomllib, tracemalloc, warnings, zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cryptoforecast.data as data
from cryptoforecast.cli import UserError
from cryptoforecast.data import DataError, load_universe, read_ohlcv, scan
from conftest import DATA_DIR, ROOT, needs_data, run_cli

CDD = DATA_DIR/'cryptodatadownload'
NO_DATA_ENV = {'CRYPTOFORECAST_DATA_DIR': ''}
SAMPLE = ROOT/'cryptoforecast'/'sample'

def one_error_line(r, *needles):
    "The process failed as a user error: exit 2, one `error:` line on stderr containing `needles`, no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    assert 'Traceback' not in r.stdout + r.stderr
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]

def env(tmp_path, **extra):
    "A private cache per test, no data folder from the environment unless given."
    return {'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache'), **NO_DATA_ENV, **extra}

def small_folder(folder: Path, coins=('BTC', 'ETH')) -> Path:
    "A data folder with real CryptoDataDownload files of `coins`."
    folder.mkdir(parents=True, exist_ok=True)
    for c in coins: shutil.copy(CDD/f'Binance_{c}USDT_d.csv', folder)
    return folder

def write_csv(path: Path, dates, close, **cols) -> Path:
    "A generic daily CSV (`date,open,high,low,close,volume`) with prices around `close`."
    close = np.asarray(close, dtype=object)
    df = pd.DataFrame(dict(date=dates, open=close, high=close, low=close, close=close, volume=1000.0, **cols))
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path

DAYS = pd.date_range('2024-01-01', periods=60, freq='D')

# 1. first run: the embedded sample -----------------------------------------------------------------------------

def test_sample_is_small_real_and_documented():
    files = sorted(SAMPLE.glob('*.csv.gz'))
    assert 8 <= len(files) <= 12
    assert {'Binance_BTCUSDT_d.csv.gz', 'Binance_ETHUSDT_d.csv.gz'} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files) <= 3 * 2**20
    readme = (SAMPLE/'README.md').read_text()
    assert 'smjjjjjj/101-alphas-in-cryptocurrency-market' in readme and '11bdc93110c7' in readme
    for f in files: assert f.name.removesuffix('.gz') in readme, f.name
    if CDD.exists():  # bytes unchanged, only gzipped
        for f in files: assert gzip.decompress(f.read_bytes()) == (CDD/f.name.removesuffix('.gz')).read_bytes(), f.name

def test_sample_is_package_data():
    pkg = tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['setuptools']['package-data']['cryptoforecast']
    for f in SAMPLE.iterdir():
        rel = str(f.relative_to(ROOT/'cryptoforecast'))
        assert any(fnmatch.fnmatch(rel, pat) for pat in pkg), rel

def test_fresh_clone_lists_the_sample_with_one_note(tmp_path):
    r = run_cli('data', 'list', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0, r.stderr
    coins = [l.split()[0] for l in r.stdout.strip().splitlines()]
    assert len(coins) >= 8 and {'BTC', 'ETH'} <= set(coins)
    note = r.stderr.strip().splitlines()
    assert len(note) == 1 and 'embedded sample' in note[0], r.stderr
    for hint in ('--data-dir', 'CRYPTOFORECAST_DATA_DIR', 'cryptoforecast data download --source binance --coins BTC,ETH'):
        assert hint in note[0], hint
    r = run_cli('data', 'check', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"{len(coins)} coins" in r.stdout and str(tmp_path/'cache') in r.stdout

@needs_data
def test_data_raw_in_the_working_directory_wins_over_the_sample(tmp_path):
    small_folder(tmp_path/'data'/'raw', ['SOL'])
    r = run_cli('data', 'list', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0 and r.stdout.split()[0] == 'SOL' and len(r.stdout.strip().splitlines()) == 1, r.stdout
    assert 'sample' not in r.stderr

@pytest.mark.parametrize('action', ['list', 'check'])
@pytest.mark.parametrize('how', ['missing', 'empty', 'env-empty'])
def test_explicit_folder_without_price_files_is_an_error(tmp_path, action, how):
    folder = tmp_path/'nothing-here'
    if how != 'missing':
        folder.mkdir()
        (folder/'notes.md').write_text('no prices')
    args, extra = (['--data-dir', folder], {}) if how != 'env-empty' else ([], {'CRYPTOFORECAST_DATA_DIR': str(folder)})
    r = run_cli('data', action, *args, cwd=tmp_path, env=env(tmp_path, **extra))
    one_error_line(r, str(folder), 'cryptoforecast data download')

# 2. the cache lives in one configurable place -------------------------------------------------------------------

def test_cache_dir_rule(monkeypatch, tmp_path):
    from cryptoforecast.config import get_config
    monkeypatch.delenv('CRYPTOFORECAST_CACHE_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'xdg'))
    assert get_config().processed_dir == tmp_path/'xdg'/'cryptoforecast'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path/'home'))
    assert get_config().processed_dir == tmp_path/'home'/'.cache'/'cryptoforecast'
    monkeypatch.setenv('CRYPTOFORECAST_CACHE_DIR', str(tmp_path/'mine'))
    assert get_config().processed_dir == tmp_path/'mine'

@needs_data
def test_cache_does_not_depend_on_the_working_directory(tmp_path):
    d = small_folder(tmp_path/'raw', ['ETH'])
    cwd = tmp_path/'reports'
    cwd.mkdir()
    r = run_cli('data', 'check', '--data-dir', d, cwd=cwd, env=env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert not (cwd/'data').exists()
    assert list((tmp_path/'cache').glob('*.parquet')) and f"cache: {tmp_path/'cache'}" in r.stdout

# 3. a damaged or misplaced cache entry is rebuilt, never served -------------------------------------------------

@needs_data
@pytest.mark.parametrize('damage', ['truncated', 'zero_bytes', 'bit_flip', 'garbage'])
def test_damaged_cache_entry_is_rebuilt(tmp_path, damage):
    f = shutil.copy(CDD/'Binance_ETHUSDT_d.csv', tmp_path)
    fresh = read_ohlcv(f, use_cache=False)
    read_ohlcv(f, cache_dir=tmp_path/'c')
    (pq,) = (tmp_path/'c').glob('*.parquet')
    raw = bytearray(pq.read_bytes())
    if damage == 'truncated': raw = raw[:len(raw) // 2]
    elif damage == 'zero_bytes': raw = bytearray()
    elif damage == 'garbage': raw = bytearray(b'not a parquet file at all')
    else:
        for i in range(200, len(raw) - 200, max(1, len(raw) // 50)): raw[i] ^= 0x10
    pq.write_bytes(bytes(raw))
    again = read_ohlcv(f, cache_dir=tmp_path/'c')
    pd.testing.assert_frame_equal(again, fresh)
    third = read_ohlcv(f, cache_dir=tmp_path/'c')  # and the entry was rewritten whole
    pd.testing.assert_frame_equal(third, fresh)

@needs_data
def test_single_bit_flips_never_serve_wrong_data(tmp_path):
    f = shutil.copy(CDD/'Binance_ETHUSDT_d.csv', tmp_path)
    fresh = read_ohlcv(f, use_cache=False)
    read_ohlcv(f, cache_dir=tmp_path/'c')
    (pq,) = (tmp_path/'c').glob('*.parquet')
    good = pq.read_bytes()
    for i in range(4, len(good) - 8, max(1, len(good) // 40)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        pq.write_bytes(bytes(bad))
        pd.testing.assert_frame_equal(read_ohlcv(f, cache_dir=tmp_path/'c'), fresh)
        pq.write_bytes(good)

@needs_data
def test_entry_stored_under_another_files_key_is_not_served(tmp_path):
    btc = shutil.copy(CDD/'Binance_BTCUSDT_d.csv', tmp_path)
    eth = shutil.copy(CDD/'Binance_ETHUSDT_d.csv', tmp_path)
    cache = tmp_path/'c'
    read_ohlcv(btc, cache_dir=cache)
    (btc_pq,) = cache.glob('*.parquet')
    read_ohlcv(eth, cache_dir=cache)
    (eth_pq,) = set(cache.glob('*.parquet')) - {btc_pq}
    shutil.copy(btc_pq, eth_pq)  # a valid parquet of BTC under ETH's key
    got = read_ohlcv(eth, cache_dir=cache)
    assert got.attrs['symbol'] == 'ETH'
    pd.testing.assert_frame_equal(got, read_ohlcv(eth, use_cache=False))

@needs_data
def test_damaged_cache_does_not_break_the_cli(tmp_path):
    d = small_folder(tmp_path/'raw')
    assert run_cli('data', 'check', '--data-dir', d, cwd=tmp_path, env=env(tmp_path)).returncode == 0
    for pq in (tmp_path/'cache').glob('*.parquet'): pq.write_bytes(pq.read_bytes()[:100])
    r = run_cli('data', 'check', '--data-dir', d, cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr

# 4. concurrent first loads -----------------------------------------------------------------------------------------

@needs_data
def test_concurrent_first_loads_all_succeed(tmp_path):
    d = small_folder(tmp_path/'raw', ['BTC', 'ETH', 'SOL'])
    exe = Path(sys.executable).parent/'cryptoforecast'
    import os
    full_env = {**os.environ, **env(tmp_path)}
    for round in range(2):
        shutil.rmtree(tmp_path/'cache', ignore_errors=True)
        procs = [subprocess.Popen([str(exe), 'data', 'check', '--data-dir', str(d)], cwd=tmp_path, env=full_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err[-3000:]
        assert not list((tmp_path/'cache').glob('*.tmp')), 'temporary files left behind'
        assert len(list((tmp_path/'cache').glob('*.parquet'))) == 3

@needs_data
def test_writer_killed_mid_write_leaves_no_bad_entry(tmp_path):
    "kill -9 a process that rewrites a cache entry in a loop: the entry left is whole or absent, never wrong."
    f = shutil.copy(CDD/'Binance_ETHUSDT_d.csv', tmp_path)
    cache = tmp_path/'c'
    loop = (f"from pathlib import Path\nfrom cryptoforecast.data import read_ohlcv\nc = Path({str(cache)!r})\n"
            f"while True:\n    for e in c.glob('*.parquet'): e.unlink()\n    read_ohlcv({str(f)!r}, cache_dir=c)\n")
    p = subprocess.Popen([sys.executable, '-c', loop])
    deadline = time.time() + 60
    while not list(cache.glob('*.parquet')) and time.time() < deadline and p.poll() is None: time.sleep(0.1)
    time.sleep(0.5)
    p.kill()
    p.wait()
    pd.testing.assert_frame_equal(read_ohlcv(f, cache_dir=cache), read_ohlcv(f, use_cache=False))

# 5. wrong data is refused, not accepted -----------------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['inf', '1e309', '-inf'])
def test_non_finite_prices_are_refused(tmp_path, bad):
    close = [str(100 + i) for i in range(len(DAYS))]
    close[17] = bad
    f = tmp_path/'raw'/'XYZ-USD_1d.csv'
    f.parent.mkdir()
    pd.DataFrame(dict(date=DAYS.strftime('%Y-%m-%d'), open=100.0, high=200.0, low=50.0, close=close, volume=1.0)).to_csv(f, index=False)
    with pytest.raises(DataError) as e: read_ohlcv(f, use_cache=False)
    msg = str(e.value)
    assert str(f) in msg and "'close'" in msg and '2024-01-18' in msg and 'row 18' in msg, msg
    r = run_cli('data', 'check', '--data-dir', f.parent, cwd=tmp_path, env=env(tmp_path))
    one_error_line(r, str(f), 'finite')

def test_non_finite_volume_is_refused(tmp_path):
    f = write_csv(tmp_path/'XYZ-USD_1d.csv', DAYS.strftime('%Y-%m-%d'), [100.0] * len(DAYS))
    t = f.read_text().splitlines()
    t[5] = t[5].rsplit(',', 1)[0] + ',inf'
    f.write_text('\n'.join(t) + '\n')
    with pytest.raises(DataError, match=r"'volume'.*2024-01-05"): read_ohlcv(f, use_cache=False)

@pytest.mark.parametrize('offset', ['+09:00', '-05:00', '+00:00', 'Z'])
def test_consistent_offset_keeps_the_local_calendar_date(tmp_path, offset):
    stamps = [d.strftime('%Y-%m-%dT00:00:00') + offset for d in DAYS]
    f = write_csv(tmp_path/'XYZ-USD_1d.csv', stamps, [100.0 + i for i in range(len(DAYS))])
    df = read_ohlcv(f, use_cache=False)
    assert df.index[0] == pd.Timestamp('2024-01-01', tz='UTC') and len(df) == len(DAYS)
    assert df.loc['2024-01-05', 'close'].item() == 104.0 and df.attrs['report']['counts'] == {}

def test_mixed_offsets_are_refused_with_a_clear_message(tmp_path):
    stamps = [d.strftime('%Y-%m-%dT00:00:00') + ('+09:00' if i < 30 else '+00:00') for i, d in enumerate(DAYS)]
    f = write_csv(tmp_path/'XYZ-USD_1d.csv', stamps, [100.0 + i for i in range(len(DAYS))])
    with pytest.raises(DataError) as e: read_ohlcv(f, use_cache=False)
    msg = str(e.value)
    assert 'offset' in msg and '+09:00' in msg and '+00:00' in msg and 'duplicated' not in msg, msg

def conflict_folder(folder: Path) -> tuple[Path, Path]:
    "Real ETH and BTC files, plus an `ETH-USD_1d.csv` whose prices are 1000 times ETH's and whose history is longer."
    small_folder(folder)
    eth = read_ohlcv(CDD/'Binance_ETHUSDT_d.csv', use_cache=False)
    dates = pd.date_range(eth.index[0] - pd.Timedelta(days=400), eth.index[-1], freq='D')
    close = eth['close'].reindex(dates.tz_localize('UTC') if dates.tz is None else dates).bfill().to_numpy() * 1000
    wrong = write_csv(folder/'ETH-USD_1d.csv', dates.strftime('%Y-%m-%d'), close.astype(float))
    return folder/'Binance_ETHUSDT_d.csv', wrong

@needs_data
def test_conflicting_sources_are_refused_when_requested(tmp_path):
    right, wrong = conflict_folder(tmp_path/'raw')
    u = scan(tmp_path/'raw', cache_dir=tmp_path/'c')
    assert [c[0] for c in u.conflicts] == ['ETH']
    with pytest.raises(UserError) as e: load_universe(tmp_path/'raw', ['ETH'], cache_dir=tmp_path/'c')
    msg = str(e.value)
    assert str(right) in msg and str(wrong) in msg and 'sources=' in msg and ('1e+03' in msg or '1000' in msg), msg
    got = load_universe(tmp_path/'raw', ['ETH'], sources={'ETH': right}, cache_dir=tmp_path/'c')
    assert got['ETH'].attrs['path'] == str(right)
    got = load_universe(tmp_path/'raw', ['ETH'], sources={'ETH': str(wrong)}, cache_dir=tmp_path/'c')
    assert got['ETH'].attrs['path'] == str(wrong)
    with pytest.warns(UserWarning, match='ETH'):
        every = load_universe(tmp_path/'raw', cache_dir=tmp_path/'c')
    assert sorted(every) == ['BTC']
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert sorted(load_universe(tmp_path/'raw', sources={'ETH': right}, cache_dir=tmp_path/'c')) == ['BTC', 'ETH']
    assert sorted(load_universe(tmp_path/'raw', ['BTC'], cache_dir=tmp_path/'c')) == ['BTC']  # BTC is not in conflict
    # `require`: the whole universe from one scan, but a required coin that conflicts or is missing is an error
    with pytest.raises(UserError, match='disagree'): load_universe(tmp_path/'raw', require=['ETH'], cache_dir=tmp_path/'c')
    with pytest.raises(UserError, match='no data for XRP'): load_universe(tmp_path/'raw', require=['XRP'], cache_dir=tmp_path/'c')
    with pytest.warns(UserWarning, match='ETH'):
        assert sorted(load_universe(tmp_path/'raw', require=['BTC'], cache_dir=tmp_path/'c')) == ['BTC']

@needs_data
def test_sources_must_name_a_file_of_that_coin(tmp_path):
    right, wrong = conflict_folder(tmp_path/'raw')
    with pytest.raises(UserError, match='BTC'):
        load_universe(tmp_path/'raw', ['ETH'], sources={'ETH': tmp_path/'raw'/'Binance_BTCUSDT_d.csv'}, cache_dir=tmp_path/'c')
    with pytest.raises(UserError, match='nope.csv'):
        load_universe(tmp_path/'raw', ['ETH'], sources={'ETH': tmp_path/'nope.csv'}, cache_dir=tmp_path/'c')

@needs_data
def test_data_check_marks_conflicts_as_errors(tmp_path):
    right, wrong = conflict_folder(tmp_path/'raw')
    r = run_cli('data', 'check', '--data-dir', tmp_path/'raw', cwd=tmp_path, env=env(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert 'ETH' in r.stderr and 'ETH-USD_1d.csv' in r.stderr and 'Traceback' not in r.stderr
    assert run_cli('data', 'check', '--data-dir', tmp_path/'raw', 'BTC', cwd=tmp_path, env=env(tmp_path)).returncode == 0

def test_symbol_that_is_no_ticker_is_refused(tmp_path):
    f = write_csv(tmp_path/'prices.csv', DAYS.strftime('%Y-%m-%d'), [100.0] * len(DAYS), symbol='../../evil')
    with pytest.raises(DataError, match='ticker'): read_ohlcv(f, use_cache=False)
    f = write_csv(tmp_path/'prices2.csv', DAYS.strftime('%Y-%m-%d'), [100.0] * len(DAYS), symbol='BTC USD')
    with pytest.raises(DataError, match='ticker'): read_ohlcv(f, use_cache=False)

def bomb_lines(mib: int) -> bytes:
    "A valid-looking CSV of about `mib` MiB (compresses to almost nothing)."
    row = b'2024-01-01,1,1,1,1,1\n'
    return b'date,open,high,low,close,volume\n' + row * (mib * 2**20 // len(row))

@pytest.mark.parametrize('kind', ['gzip', 'zip', 'plain'])
def test_file_expanding_past_the_cap_is_refused_in_bounded_memory(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(data, 'MAX_FILE_BYTES', 2 * 2**20)
    body = bomb_lines(40 if kind != 'plain' else 3)
    if kind == 'gzip':
        f = tmp_path/'XYZ-USD_1d.csv.gz'
        f.write_bytes(gzip.compress(body, 6))
    elif kind == 'zip':
        f = tmp_path/'XYZ-USD_1d.zip'
        with zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as z: z.writestr('XYZ-USD_1d.csv', body)
    else:
        f = tmp_path/'XYZ-USD_1d.csv'
        f.write_bytes(body)
    del body
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match='more than 2 MiB'): data.read_text(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"

# 6. download clients facing odd answers -----------------------------------------------------------------------------

class FakeResponse:
    def __init__(self, status=200, body=b'[]', headers=None):
        self.status_code, self.content, self.headers = status, body, headers or {'Content-Type': 'application/json'}
        self.text = body.decode('utf-8', 'replace')
    def json(self): return json.loads(self.text)

class FakeSession:
    "Answers the scripted responses in order and records the requests."
    def __init__(self, *responses): self.responses, self.urls = list(responses), []
    def get(self, url, params=None, timeout=None):
        self.urls.append(url)
        return self.responses.pop(0)

def client(*responses):
    from cryptoforecast.sources import HttpClient
    slept = []
    return HttpClient(session=FakeSession(*responses), min_interval=0, backoff=0, sleep=slept.append), slept

URL = 'https://api.binance.com/api/v3/klines'

@pytest.mark.parametrize('retry_after, lo, hi', [
    ('3', 3, 3), ('-5', 0, 0), ('100000', 0, 120), ('abc', 0, 1),
    ('HTTP-DATE+4', 2, 5), ('HTTP-DATE-100', 0, 0)])
def test_retry_after_forms_are_bounded(capsys, retry_after, lo, hi):
    if retry_after.startswith('HTTP-DATE'):
        retry_after = email.utils.formatdate(time.time() + int(retry_after[9:]), usegmt=True)
    c, slept = client(FakeResponse(429, b'{}', {'Retry-After': retry_after}), FakeResponse(200, b'[[1]]'))
    assert c.get_json(URL, {'symbol': 'BTCUSDT'}) == [[1]]
    waits = [s for s in slept if s > 0] or [0]
    assert lo <= sum(waits) <= hi, slept
    err = capsys.readouterr().err
    assert 'api.binance.com' in err and 'HTTP 429' in err and 'retry' in err.lower(), err

def test_non_json_answer_is_a_clear_error():
    from cryptoforecast.sources import SourceError
    page = b'<!DOCTYPE html>\n<html><body>Service temporarily unavailable</body></html>'
    c, _ = client(FakeResponse(200, page, {'Content-Type': 'text/html; charset=utf-8'}))
    with pytest.raises(SourceError) as e: c.get_json(URL, {'symbol': 'BTCUSDT'})
    msg = str(e.value)
    assert '\n' not in msg and URL in msg and 'HTTP 200' in msg and 'text/html' in msg and '<!DOCTYPE html>' in msg, msg
    assert isinstance(e.value, UserError)

def test_download_cli_with_an_html_answer_is_one_line(tmp_path):
    from cryptoforecast.sources import recording_name
    t0 = int(pd.Timestamp('2024-01-01', tz='UTC').timestamp() * 1000)
    rec = tmp_path/'rec'
    rec.mkdir()
    name = recording_name(URL, {'symbol': 'ETHUSDT', 'interval': '1d', 'startTime': t0, 'limit': 1000})
    (rec/name).write_text(json.dumps({'status': 200, 'text': '<html>maintenance</html>', 'headers': {'Content-Type': 'text/html'}}))
    r = run_cli('data', 'download', '--source', 'binance', '--coins', 'ETH', '--start', '2024-01-01', '--data-dir', tmp_path/'raw',
                cwd=tmp_path, env={**env(tmp_path), 'CRYPTOFORECAST_REPLAY_DIR': str(rec)})
    one_error_line(r, 'text/html', '<html>maintenance')

# 7. bad arguments stop before any work ---------------------------------------------------------------------------

@pytest.mark.parametrize('args, needle', [
    (['data', 'download', '--source', 'binance', '--coins', '../evil'], '--coins'),
    (['data', 'download', '--source', 'binance', '--coins', 'BTC,,ETH'], '--coins'),
    (['data', 'download', '--source', 'binance', '--coins', 'BTC', '--start', 'yesterday'], '--start'),
    (['data', 'download', '--source', 'binance', '--coins', 'BTC', '--start', '2017-13-01'], '--start'),
    (['data', 'download', '--source', 'binance', '--coins', 'BTC', '--start', '2999-01-01'], '--start'),
    (['data', 'download', '--source', 'kraken', '--coins', 'BTC'], '--source'),
    (['data', 'check', '../evil'], 'COIN'),
    (['data', 'frobnicate'], 'frobnicate'),
    (['features', '../evil'], 'coin'),
    (['features', 'BTC', '--out', 'x.csv'], '--out'),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    r = run_cli(*args, cwd=tmp_path, env={**env(tmp_path), 'CRYPTOFORECAST_REPLAY_DIR': str(tmp_path/'no-recordings')})
    one_error_line(r, needle)
    assert not (tmp_path/'data').exists() and not (tmp_path/'cache').exists()

def test_download_without_data_dir_goes_to_data_raw_never_into_the_sample(tmp_path):
    from cryptoforecast.sources import BINANCE_URL, record
    t0 = int(pd.Timestamp('2024-01-01', tz='UTC').timestamp() * 1000)
    kl = [[t0 + i*86_400_000, '100', '102', '99', '101', '10', t0 + i*86_400_000 + 86_399_999, '1000', 5, '5', '50', '0']
          for i in range(40)]
    record(tmp_path/'rec', BINANCE_URL, {'symbol': 'ETHUSDT', 'interval': '1d', 'startTime': t0, 'limit': 1000}, kl)
    before = sorted(p.name for p in SAMPLE.iterdir())
    r = run_cli('data', 'download', '--source', 'binance', '--coins', 'ETH', '--start', '2024-01-01', cwd=tmp_path,
                env={**env(tmp_path), 'CRYPTOFORECAST_REPLAY_DIR': str(tmp_path/'rec')})
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'data'/'raw'/'binance'/'ETHUSDT_1d.csv').exists()
    assert sorted(p.name for p in SAMPLE.iterdir()) == before
    r = run_cli('data', 'list', cwd=tmp_path, env=env(tmp_path))  # data/raw now holds price files: it wins over the sample
    assert r.stdout.split()[:4] == ['ETH', '2024-01-01', '2024-02-09', '40'] and 'sample' not in r.stderr, r.stdout + r.stderr
