"""`cryptoforecast site` over real batch reports, and the built site in headless Chromium."""
import functools, http.server, shutil, threading
from pathlib import Path

import pandas as pd
import pytest

from cryptoforecast.batch import coin_sources, run_batch
from cryptoforecast.site import build_site
from conftest import CHROMIUM, CHROMIUM_ARGS, DATA_DIR, ROOT, data_dir_with_broken_coin, needs_data, run_cli

pytestmark = [needs_data, pytest.mark.slow]

@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Path:
    "Real reports: ETH (ok) and XYZ (a broken file: failed), made by the batch into a temp folder."
    data = data_dir_with_broken_coin(tmp_path_factory.mktemp('data'))
    out = tmp_path_factory.mktemp('runs')
    t = run_batch(['ETH', 'XYZ'], params={'train': False}, out_dir=out, data_dir=data, progress=False)  # data-only reports: the site is under test, not training
    assert list(t.status) == ['ok', 'failed'], t
    return out

@pytest.fixture(scope='module')
def nbs(tmp_path_factory) -> Path:
    "Two of the documentation notebooks (converting all of them is slow and proves nothing more)."
    d = tmp_path_factory.mktemp('nbs')
    for name in ('index.ipynb', '00_config.ipynb'): shutil.copy(ROOT/'nbs'/name, d)
    return d

@pytest.fixture(scope='module')
def site(runs, nbs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('site')
    empty = tmp_path_factory.mktemp('no-training-runs')
    r = run_cli('site', '--out', out, '--runs', runs, '--nbs', nbs, '--artifacts', empty, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert '2 reports, 0 training runs, 2 docs' in r.stdout and 'docs executed in' in r.stdout   # the docs run (by default)
    return out

def test_site_lists_the_reports(site):
    index = (site/'index.html').read_text()
    for href in ('reports/ETH.html', 'reports/XYZ.html', 'docs/index.html', 'docs/00_config.html'):
        assert f'href="{href}"' in index, href
        assert (site/href).exists(), href
    assert '<td class="ok">ok</td>' in index and '<td class="failed" title="UserError: XYZ: no usable price data' in index
    assert 'ETH daily close' in (site/'reports'/'ETH.html').read_text()
    assert 'negative price' in (site/'reports'/'XYZ.html').read_text()  # the failed report shows its error

def test_pages_render_offline_and_name_their_coin(site):
    "No page loads a script from the internet (nbconvert's require.js and MathJax came from a CDN); a report's title names its coin."
    import re
    for page in site.rglob('*.html'):
        remote = re.findall(r'<script[^>]*\bsrc="https?://[^"]*"', page.read_text())
        assert not remote, (page.name, remote)
    eth = (site/'reports'/'ETH.html').read_text()
    assert '<h1 id="ETH-forecast-report">ETH forecast report' in eth and 'Per-coin forecast report' not in eth

def test_out_that_is_a_file_is_one_line(runs, nbs, tmp_path):
    (tmp_path/'file').write_text('x')
    r = run_cli('site', '--out', tmp_path/'file', '--runs', runs, '--nbs', nbs, '--no-execute', cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'is a file, not a folder' in r.stderr, r.stderr

def test_one_plotly_js_for_the_site(site, runs):
    from plotly.offline import get_plotlyjs
    assert (site/'plotly.min.js').read_text() == get_plotlyjs()
    eth = (site/'reports'/'ETH.html').read_text()
    assert '<script src="../plotly.min.js"></script>' in eth and 'Plotly.newPlot' in eth
    assert get_plotlyjs()[:2000] not in eth and len(eth) < len(get_plotlyjs())   # the page does not carry its own copy
    assert 'scan(data_dir' not in eth   # the report shows results, not the template's code
    assert (runs/'plotly.min.js').exists() and '<script src="plotly.min.js"></script>' in (runs/'ETH.html').read_text()

def test_docs_pages_show_results(site, nbs):
    "The docs notebooks are stored without outputs; the site's pages show what their cells print."
    import json
    stored = json.loads((nbs/'00_config.ipynb').read_text())
    assert not any(c.get('outputs') for c in stored['cells'])
    page = (site/'docs'/'00_config.html').read_text()
    assert '<div class="jp-OutputArea-child jp-OutputArea-executeResult">' in page   # get_config()'s defaults, printed
    from cryptoforecast.config import get_config
    cfg = get_config()
    assert f"<pre>{(cfg.horizons, cfg.lookback, cfg.split_fractions, cfg.seed)}</pre>" in page

def test_no_execute_converts_as_stored(runs, nbs, tmp_path):
    r = run_cli('site', '--out', tmp_path, '--runs', runs, '--nbs', nbs, '--no-execute', cwd=ROOT)
    assert r.returncode == 0 and 'docs executed' not in r.stdout, r.stdout + r.stderr
    assert '<div class="jp-OutputArea-child' not in (tmp_path/'docs'/'00_config.html').read_text()

def test_rebuild_drops_removed_reports(runs, tmp_path):
    shutil.copytree(runs, tmp_path/'runs')
    build_site(tmp_path/'site', tmp_path/'runs', tmp_path/'no-docs')
    for f in (tmp_path/'runs').glob('XYZ.*'): f.unlink()
    index = build_site(tmp_path/'site', tmp_path/'runs', tmp_path/'no-docs').index
    assert 'XYZ' not in index.read_text() and not (tmp_path/'site'/'reports'/'XYZ.html').exists()

@pytest.fixture
def served(site):
    "The site on a local HTTP server (127.0.0.1, a free port)."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown(); httpd.server_close()

@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")
def test_site_in_headless_chromium(served, tmp_path):
    sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed')
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            # the site must work offline: anything not served from 127.0.0.1 (CDN MathJax, require.js) is refused
            page.route('**/*', lambda route: route.continue_() if route.request.url.startswith(served) else route.abort())
            assert page.goto(f"{served}/index.html").ok
            assert page.title() == 'cryptoforecast'
            rows = page.locator('#reports tbody tr')
            assert rows.count() == 2
            assert rows.nth(0).locator('td').nth(1).inner_text() == 'ok'
            assert rows.nth(1).locator('td').nth(1).inner_text() == 'failed'
            page.screenshot(path=str(tmp_path/'index.png'), full_page=True)
            hrefs = page.eval_on_selector_all('a', 'els => els.map(e => e.getAttribute("href"))')
            assert hrefs == ['reports/ETH.html', 'reports/XYZ.html', 'docs/index.html', 'docs/00_config.html']
            for href in hrefs:  # every link opens a page with a title
                resp = page.goto(f"{served}/{href}")
                assert resp.ok, href
                assert page.title(), href
            page.goto(f"{served}/reports/ETH.html")  # the price chart renders from the site's one plotly.min.js
            page.wait_for_selector('.plotly-graph-div .main-svg', timeout=20_000)
            page.screenshot(path=str(tmp_path/'eth.png'))
        finally: browser.close()
    assert (tmp_path/'index.png').stat().st_size > 1000 and (tmp_path/'eth.png').stat().st_size > 1000
