"""How long the Voila dashboard takes to draw, as a visitor sees it in headless Chromium.

Starts `cryptoforecast dashboard` on a free 127.0.0.1 port (with `--preheat`, Voila's kernel pre-heating), waits
`--warmup` seconds for the pre-heated kernel to run the page, then opens the page `--visits` times, `--gap` seconds
apart, and prints for each visit the seconds until the price chart is drawn and until every chart is. Requests that
leave 127.0.0.1 are counted (there should be none). Needs a finished training run:

    .venv/bin/python benchmarks/dashboard_render.py --artifacts-dir artifacts [--visits 3] [--preheat]
"""
import argparse, os, signal, socket, subprocess, sys, time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run']

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--artifacts-dir', default='artifacts')
    p.add_argument('--visits', type=int, default=3)
    p.add_argument('--gap', type=float, default=20, help='seconds between visits (the pool refills in between)')
    p.add_argument('--warmup', type=float, default=30, help='seconds to wait after the server listens')
    p.add_argument('--preheat', action='store_true')
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright
    port = free_port()
    cmd = [str(Path(sys.executable).parent/'cryptoforecast'), 'dashboard', '--port', str(port), '--artifacts-dir', a.artifacts_dir]
    if a.preheat: cmd.append('--preheat')
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    outside = []
    def note_outside(request):  # recorded, not intercepted: Playwright's routing holds back Voila's streamed page
        u = urlparse(request.url)
        if u.scheme in ('http', 'https', 'ws', 'wss') and u.hostname not in ('127.0.0.1', 'localhost'):
            outside.append(request.url)
    try:
        t0 = time.time()
        while socket.socket().connect_ex(('127.0.0.1', port)) != 0:
            if proc.poll() is not None or time.time() - t0 > 120: print('the dashboard did not start'); return 1
            time.sleep(0.2)
        print(f"server listening after {time.time() - t0:.1f} s; preheat {'on' if a.preheat else 'off'}; warm-up {a.warmup:.0f} s")
        time.sleep(a.warmup)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for k in range(a.visits):
                page = browser.new_page(viewport={'width': 1300, 'height': 900})
                page.on('request', note_outside)
                t = time.time()
                page.goto(f"http://127.0.0.1:{port}/", wait_until='commit', timeout=180_000)
                page.wait_for_selector('.cf-price .js-plotly-plot', timeout=180_000); price = time.time() - t
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000); every = time.time() - t
                print(f"visit {k + 1}: price chart {price:.1f} s, all charts {every:.1f} s")
                page.close()
                if k + 1 < a.visits: time.sleep(a.gap)
            browser.close()
        print(f"requests outside 127.0.0.1: {len(outside)}" + (f" ({', '.join(sorted(set(outside)))})" if outside else ''))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
    return 0

if __name__ == '__main__': sys.exit(main())
