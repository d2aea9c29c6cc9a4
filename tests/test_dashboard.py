"""The forecast dashboard: its math on real runs, and the Voila page driven by headless Chromium."""
import os, shutil, signal, socket, subprocess, sys, time
from urllib.parse import urlparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoforecast import dashboard as D
from conftest import CHROMIUM, CHROMIUM_ARGS, DATA_DIR, ROOT, needs_data, run_cli

SHOTS = Path(os.environ.get('CRYPTOFORECAST_SHOTS_DIR', '/tmp/dashboard_shots'))

@pytest.fixture(scope='session')
def artifacts(tmp_path_factory) -> Path:
    "Runs of BTC and ETH with the cheap models (about a minute); `$CRYPTOFORECAST_TEST_ARTIFACTS` reuses finished ones."
    reuse = os.environ.get('CRYPTOFORECAST_TEST_ARTIFACTS')
    if reuse and D.coins_with_runs(reuse)[:2]: return Path(reuse)
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    art = tmp_path_factory.mktemp('artifacts')
    r = run_cli('train', '--crypto', 'BTC,ETH', '--epochs', '1', '--no-ensemble', '--models', 'naive,drift,lightgbm',
                '--no-mlflow', '--data-dir', DATA_DIR, '--artifacts-dir', art, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return art

# ---- the math on real forecasts

@needs_data
def test_alert_probability_is_monotone_and_matches_the_quantiles(artifacts):
    run = D.latest_run('BTC', artifacts)
    for _, row in run.forecast.iterrows():
        c = row['close_origin']
        ks = c * np.exp(np.linspace(-1, 1, 201))
        p = np.array([D.prob_above(k, row) for k in ks])
        assert np.all(np.diff(p) <= 1e-12) and p[0] > 0.99 and p[-1] < 0.01, row['horizon']
        for q, level in zip(D.QUANTILE_COLS, D.QUANTILES):   # at each forecast quantile, exactly its level
            assert D.prob_above(c * np.exp(row[q]), row) == pytest.approx(1 - level, abs=1e-9)
    at = D.alert_table(run.forecast, [run.forecast['close_origin'].iloc[0] * 2])
    assert (at['direction'] == 'rises above').all() and not at['triggers'].any()

@needs_data
def test_portfolio_quantiles(artifacts):
    btc, eth = D.latest_run('BTC', artifacts), D.latest_run('ETH', artifacts)
    one = D.portfolio_value({'BTC': 2}, {'BTC': btc.forecast}, n=40_000)
    for h in btc.horizons:
        r = btc.forecast.query('horizon == @h').iloc[0]
        for q in ('q0.1', 'q0.5', 'q0.9'):   # one coin: the forecast's own quantiles, up to Monte Carlo error
            assert one.loc[h, q] == pytest.approx(2 * r['close_origin'] * np.exp(r[q]), rel=0.01)
    fc = {'BTC': btc.forecast, 'ETH': eth.forecast}
    ind = D.portfolio_value({'BTC': 1, 'ETH': 10}, fc)
    com = D.portfolio_value({'BTC': 1, 'ETH': 10}, fc, comonotonic=True)
    now = btc.forecast['close_origin'].iloc[0] + 10 * eth.forecast['close_origin'].iloc[0]
    assert ind.loc[0, 'q0.5'] == pytest.approx(now) and list(ind.index) == [0, 1, 7, 30]
    assert (ind.filter(like='q').diff(axis=1).iloc[:, 1:] >= 0).all().all()
    assert ((ind['q0.975'] - ind['q0.025']) <= (com['q0.975'] - com['q0.025']) + 1e-9).all()   # independence narrows the spread
    with pytest.raises(Exception, match='no forecast for DOGE'): D.portfolio_value({'DOGE': 1}, fc)

def test_cli_without_runs_is_a_one_line_error(tmp_path):
    r = run_cli('dashboard', '--artifacts-dir', tmp_path, timeout=60)
    assert r.returncode == 2 and 'no finished training run' in r.stderr and 'Traceback' not in r.stderr

# ---- the page in a browser

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def wait_port(port: int, proc, timeout: float = 90):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise AssertionError(f"the dashboard exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(('127.0.0.1', port)) == 0: return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")

def _playwright():
    if not CHROMIUM.exists(): pytest.skip(f"no Chromium at {CHROMIUM}")
    try: from playwright.sync_api import sync_playwright
    except ImportError: pytest.skip('python playwright is not installed (pip install playwright)')
    return sync_playwright

def open_dashboard(browser, url, outside: list):
    "Open the page; seconds until the price chart is drawn. Requests leaving 127.0.0.1 are appended to `outside`."
    page = browser.new_page(viewport={'width': 1300, 'height': 900})
    def note(request):
        u = urlparse(request.url)
        if u.scheme in ('http', 'https', 'ws', 'wss') and u.hostname not in ('127.0.0.1', 'localhost'): outside.append(request.url)
    page.on('request', note)
    t0 = time.time()
    page.goto(url, timeout=180_000, wait_until='commit')   # Voila answers once the page's kernel has run it
    page.wait_for_selector('.cf-price .js-plotly-plot', timeout=180_000)
    return page, time.time() - t0

def wait_text(page, selector, text, timeout=60_000):
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text], timeout=timeout)

@pytest.mark.browser
@pytest.mark.slow
@needs_data
def test_dashboard_in_chromium(artifacts, tmp_path):
    sync_playwright = _playwright()
    port = free_port()
    exe = Path(sys.executable).parent/'cryptoforecast'
    log = open(tmp_path/'dashboard.log', 'w')
    proc = subprocess.Popen([str(exe), 'dashboard', '--port', str(port), '--artifacts-dir', str(artifacts)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    shots = [tmp_path/'btc.png', tmp_path/'eth.png']
    try:
        wait_port(port, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            outside = []   # recorded, not intercepted: Playwright's routing holds back Voila's streamed page
            page, first = open_dashboard(browser, f"http://127.0.0.1:{port}/", outside)
            wait_text(page, '.cf-header', 'BTC: run')
            live = page.inner_text('.cf-live')
            assert 'Offline' in live or 'Live BTC' in live, live
            assert page.locator('.js-plotly-plot').count() >= 3
            # the live track record: its note before any forecast is stored, else its table; the news: offline, its notice
            page.wait_for_function("() => ['.cf-live-track', '.cf-news'].every(s => document.querySelector(s)?.innerText.trim())")
            track = page.inner_text('.cf-live-track')
            assert 'No forecasts stored yet' in track or page.locator('.cf-live-table').count() == 1, track
            news = page.inner_text('.cf-news')
            assert news.startswith('Offline: no news (CoinDesk: cannot reach') or page.locator('.cf-news-list li').count() > 0, news
            # switch the horizon: the chart title and the skill table follow
            page.click('.cf-horizon button:has-text("30 days")')
            wait_text(page, '.cf-skill', 'Skill at 30 day')
            wait_text(page, '.cf-price', 'forecast for 30 day')
            # a holding and an alert
            page.fill('.cf-holdings input', 'BTC 0.5, ETH 2'); page.press('.cf-holdings input', 'Enter')
            wait_text(page, '.cf-portfolio', 'value at the close')
            shown = page.inner_text('.cf-portfolio')
            assert 'Gaussian copula' in shown and 'var99' in shown and 'es99' in shown, shown   # joined by their correlation
            assert page.locator('.cf-calibration .js-plotly-plot').count() == 1   # how often past intervals held
            close = D.latest_run('BTC', artifacts).forecast['close_origin'].iloc[0]
            page.fill('.cf-alerts input', f"{close * 1.1:.0f}, {close * 0.9:.0f}"); page.press('.cf-alerts input', 'Enter')
            wait_text(page, '.cf-alert-table', 'rises above'); wait_text(page, '.cf-alert-table', 'falls below')
            page.set_viewport_size({'width': 1300, 'height': 3300})   # Voila scrolls inside the page: a tall window shows it all
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots[0]), full_page=True)
            # switch the coin: header, chart and alerts follow
            page.select_option('.cf-coin select', 'ETH')
            wait_text(page, '.cf-header', 'ETH: run')
            wait_text(page, '.cf-price', 'ETH: last')
            wait_text(page, '.cf-alert-table', 'Enter ETH price thresholds')   # BTC's thresholds stay with BTC
            eth = D.latest_run('ETH', artifacts).forecast['close_origin'].iloc[0]
            page.fill('.cf-alerts input', f"{eth * 1.2:.0f}"); page.press('.cf-alerts input', 'Enter')
            wait_text(page, '.cf-alert-table', 'ETH alerts')
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots[1]), full_page=True)
            # more visitors, with the server and the browser warm: before `kernel_client.recheck_kernel_sockets` about one
            # visit in two to five never finished here, so three visits in a row would very likely have caught it
            later = [open_dashboard(browser, f"http://127.0.0.1:{port}/", outside)[1] for _ in range(2)]
            browser.close()
        print(f"\nrender time: first page {first:.1f} s, later pages {', '.join(f'{t:.1f}' for t in later)} s")
        assert not outside, f"the dashboard asked for resources outside 127.0.0.1: {sorted(set(outside))}"
        # the target is 10 s on an idle machine; shared CI cores get a wider bound, the figures are printed
        assert max(first, *later) < float(os.environ.get('CRYPTOFORECAST_RENDER_LIMIT_S', 40)), (first, later)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)   # Ctrl-C: the CLI stops Voila itself
            try: proc.wait(timeout=60)   # the CLI stops Voila and its kernels within about 10 s
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()
    out = (tmp_path/'dashboard.log').read_text()
    assert f"http://127.0.0.1:{port}/" in out and 'dashboard stopped' in out, out[-2000:]
    assert proc.returncode == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    for s in shots: shutil.copy(s, SHOTS/s.name)


# ---- what the page shows of the live store, of models that forecast alike, and of old prices (a synthetic coin: seconds)

@pytest.fixture(scope='module')
def synthetic_artifacts(tmp_path_factory) -> Path:
    """A run of a synthetic coin SYN whose lightgbm forecasts exactly as its drift does, and a forecast store with two champion
    forecasts eight weeks apart, the first made (as with `--as-of`) by a version trained on data after its origin."""
    import warnings
    from scipy.stats import norm
    from cryptoforecast import live
    from cryptoforecast.atomic import write_json
    from cryptoforecast.features import synthetic_ohlcv
    from cryptoforecast.metrics import QUANTILES, quantile_col
    from cryptoforecast.train import train_coin
    root = tmp_path_factory.mktemp('synthetic')
    data, art = root/'data', root/'artifacts'
    data.mkdir()
    ohlcv = synthetic_ohlcv(700, seed=3)
    px = ohlcv.rename_axis('datetime').reset_index()
    px['datetime'] = px['datetime'].dt.strftime('%Y-%m-%d')
    px[['datetime', 'open', 'high', 'low', 'close', 'volume']].to_csv(data/'SYN-USD_1d.csv', index=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        train_coin('SYN', data_dir=data, models=('naive', 'drift', 'lightgbm'), ensemble=True, track=False, progress=False,
                   artifacts_dir=art, seed=0)
    origins = [ohlcv.index[-70], ohlcv.index[-14]]
    rows = []
    for origin, run_id in zip(origins, ('r-late', 'r-early')):
        for h in (1, 7):
            sig = 0.03 * np.sqrt(h)
            r = dict(coin='SYN', origin=origin, horizon=h, alias='champion', model_version=1, model='lightgbm', mean=0.0,
                     sigma=sig, point=0.0, close_origin=float(ohlcv['close'].loc[origin]), run_id=run_id, as_of=None,
                     created_at=f"{origin:%Y-%m-%d}T01:00:00+00:00")
            rows.append({**r, **{quantile_col(q): norm.ppf(q) * sig for q in QUANTILES}})
    live.insert_forecasts(live.store_path(art), pd.DataFrame(rows))
    write_json(art/'SYN'/'registered-late'/'report.json', dict(mlflow=dict(run_id='r-late'), data=dict(last=f"{origins[1]:%Y-%m-%d}")))
    return art

def test_live_fans_identical_models_and_price_date_without_a_browser(synthetic_artifacts):
    "The page's parts from the library: two fans for two origins, one skill row for drift and lightgbm, the price date said."
    art = synthetic_artifacts
    run = D.latest_run('SYN', art)
    track = D.live_track('SYN', art, D.price_history(run))
    fig = D.live_figure(track, 7)
    medians = [t for t in fig.data if 'median' in (t.name or '')]
    assert len(medians) == 2, [t.name for t in fig.data]   # joined across origins, this was one line through both
    assert [m.name for m in medians] == ['not out of sample (median)', 'forecast median']
    assert all(pd.Timestamp(m.x[-1]) - pd.Timestamp(m.x[0]) == pd.Timedelta(days=7) for m in medians)
    assert track.table['stored'].tolist() == [1, 1]   # the forecast from a model that saw its outcome is no track record
    skill = D.skill_table(run, 7, merge_identical=True)
    assert 'drift = ensemble = lightgbm' in set(skill['model']) and not {'drift', 'lightgbm'} & set(skill['model']), skill
    when, old = D.portfolio_prices({'SYN': 2}, {'SYN': run.forecast})
    assert when.startswith(f"at the close of {run.origin:%Y-%m-%d} (") and old.startswith('The prices are'), (when, old)

@pytest.mark.browser
def test_dashboard_screenshots_live_fans_identical_models_price_date(synthetic_artifacts, tmp_path):
    "The served page in Chromium: screenshots of the live chart (two fans), the skill table (one row for two models), the portfolio's date."
    sync_playwright = _playwright()
    port = free_port()
    exe = Path(sys.executable).parent/'cryptoforecast'
    log = open(tmp_path/'dashboard.log', 'w')
    proc = subprocess.Popen([str(exe), 'dashboard', '--port', str(port), '--artifacts-dir', str(synthetic_artifacts), '--preheat', '0'],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        wait_port(port, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page, _ = open_dashboard(browser, f"http://127.0.0.1:{port}/", [])
            page.set_viewport_size({'width': 1300, 'height': 3300})
            page.wait_for_selector('.cf-live-track-chart .js-plotly-plot', timeout=60_000)
            traces = page.evaluate("() => document.querySelector('.cf-live-track-chart .js-plotly-plot').data"
                                   ".map(t => [t.name, t.x.length, t.x[0]])")
            medians = [t for t in traces if t[0] and 'median' in t[0]]
            assert len(medians) == 2 and medians[0][2] != medians[1][2], traces   # two fans, each from its own origin
            assert 'not out of sample' in page.inner_text('.cf-live-track')
            page.locator('.cf-live-track-chart').screenshot(path=str(SHOTS/'live_two_fans.png'))
            skill = page.inner_text('.cf-skill-table')
            assert skill.count('drift = ensemble = lightgbm') == 1 and '\ndrift\t' not in skill, skill
            page.locator('.cf-skill').screenshot(path=str(SHOTS/'skill_identical_models.png'))
            page.fill('.cf-holdings input', 'SYN 2'); page.press('.cf-holdings input', 'Enter')
            wait_text(page, '.cf-portfolio', 'value at the close of')
            run = D.latest_run('SYN', synthetic_artifacts)
            assert f"at the close of {run.origin:%Y-%m-%d}" in page.inner_text('.cf-portfolio-date')
            assert 'The prices are' in page.inner_text('.cf-portfolio-old')
            page.locator('.cf-portfolio').screenshot(path=str(SHOTS/'portfolio_price_date.png'))
            browser.close()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try: proc.wait(timeout=60)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()
    for name in ('live_two_fans.png', 'skill_identical_models.png', 'portfolio_price_date.png'):
        assert (SHOTS/name).stat().st_size > 5000, name
