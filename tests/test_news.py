"""The news client against feeds served from 127.0.0.1 (RSS, Atom, broken XML, HTTP 500, an answer too late), never the internet."""
import os, subprocess, sys, time

import pandas as pd
import pytest

from cryptoforecast import news as N

ITEMS = [dict(title='Bitcoin ETF inflows hit a record', link='https://example.org/1', summary='BTC funds',
              published='2026-11-30T10:00:00Z'),
         dict(title='Ethereum gas fees fall', link='https://example.org/2', summary='ETH', published='2026-11-30T09:00:00Z'),
         dict(title='Markets wait for the Fed', link='https://example.org/3', summary='no coin named',
              published='2026-11-30T08:00:00Z')]
ATOM = [dict(title='Solana validators upgrade', link='https://example.org/4', summary='<p>SOL &amp; more</p>',
             published='2026-12-01T07:00:00+01:00'),
        dict(title='Bitcoin miners sell', link='https://example.org/5', summary='', published='2026-11-29T00:00:00Z')]

@pytest.fixture
def server():
    routes = {'/rss': (200, N.sample_rss(ITEMS), 0), '/atom': (200, N.sample_atom(ATOM), 0),
              '/broken': (200, N.sample_rss(ITEMS)[:-40], 0), '/html': (200, b'<html><body>sign in</body></html>', 0),
              '/500': (500, b'internal error', 0), '/slow': (200, N.sample_rss(ITEMS), 3.0)}
    with N.FeedServer(routes) as s: yield s

def test_rss_and_atom_together_newest_first_and_by_coin(server, tmp_path):
    feeds = {'R': server.url('/rss'), 'A': server.url('/atom')}
    got = N.headlines(None, feeds, tmp_path, limit=10)
    assert got.notice is None and not got.offline
    assert [i['link'][-1] for i in got.items] == ['4', '1', '2', '3', '5']   # 07:00+01:00 is 06:00 UTC on Dec 1
    assert got.items[0]['published'] == pd.Timestamp('2026-12-01 06:00', tz='UTC') and got.items[0]['summary'] == 'SOL & more'
    btc = N.headlines('BTC', feeds, tmp_path)
    assert [i['title'] for i in btc.items] == ['Bitcoin ETF inflows hit a record', 'Bitcoin miners sell']
    assert [i['source'] for i in btc.items] == ['R', 'A']
    assert len(N.headlines(None, feeds, tmp_path, limit=2).items) == 2

def test_a_reload_within_max_age_reads_the_cache(server, tmp_path):
    feeds = {'R': server.url('/rss')}
    first = N.headlines('ETH', feeds, tmp_path, max_age=15)
    for _ in range(3): assert N.headlines('ETH', feeds, tmp_path, max_age=15).items == first.items
    assert server.hits['/rss'] == 1
    assert len(list(tmp_path.glob('*.json'))) == 1 and not list(tmp_path.glob('*.tmp*'))   # written atomically, nothing left over
    N.headlines('ETH', feeds, tmp_path, max_age=15, now=time.time() + 16 * 60)   # older than max_age: fetched again
    assert server.hits['/rss'] == 2

@pytest.mark.parametrize('path, why', [('/broken', 'B is not well-formed XML'), ('/html', 'neither RSS nor Atom (root <html>)'),
                                       ('/500', 'answered HTTP 500 (3 tries)'), ('/missing', 'answered HTTP 404')])
def test_a_bad_feed_is_a_notice_and_the_others_still_show(server, tmp_path, path, why):
    got = N.headlines(None, {'R': server.url('/rss'), 'B': server.url(path)}, tmp_path, retries=2)
    assert len(got.items) == 3 and not got.offline
    assert got.notice.startswith('Some feeds could not be read: B: ') and why in got.notice, got.notice
    assert got.notice.count('\n') == 0
    alone = N.headlines(None, {'B': server.url(path)}, tmp_path / 'alone', retries=0)
    assert alone.items == [] and alone.offline and alone.notice.startswith('No news: B: '), alone.notice
    assert 'cf-offline-notice' in N.news_html(alone)

def test_a_server_that_answers_too_late_is_given_up_on_time(server, tmp_path):
    t0 = time.monotonic()
    got = N.headlines(None, {'S': server.url('/slow')}, tmp_path, timeout=0.3, retries=1)
    took = time.monotonic() - t0
    why = f"S: 127.0.0.1:{server.httpd.server_port} did not answer within 0.3 s (2 tries)"
    assert got.items == [] and why in got.notice, got.notice
    assert took < 2.5, took   # two tries of 0.3 s and a 0.5 s backoff, not the server's 3 s
    assert server.hits['/slow'] == 2

def test_after_a_failure_the_last_good_headlines_stay_with_a_note(server, tmp_path):
    url = server.url('/rss')
    N.headlines(None, {'R': url}, tmp_path)
    server.routes['/rss'] = (500, b'down', 0)
    later = N.headlines(None, {'R': url}, tmp_path, retries=0, now=time.time() + 20 * 60)
    assert len(later.items) == 3 and 'R: 127.0.0.1:' in later.notice and "showing its headlines of 20 min ago" in later.notice
    hits = server.hits['/rss']
    N.headlines(None, {'R': url}, tmp_path, retries=0, now=time.time() + 20 * 60 + 10)   # the failure is remembered for a minute
    assert server.hits['/rss'] == hits

def test_offline_is_quick_and_says_so(tmp_path):
    feeds = {'CoinDesk': 'https://www.coindesk.invalid/rss', 'Cointelegraph': 'https://cointelegraph.invalid/rss'}
    t0 = time.monotonic()
    got = N.headlines('BTC', feeds, tmp_path)
    assert time.monotonic() - t0 < 3
    assert got.offline and got.items == []
    assert got.notice.startswith('Offline: no news (CoinDesk: cannot reach www.coindesk.invalid: no network (offline?); '
                                 'Cointelegraph: cannot reach cointelegraph.invalid'), got.notice
    assert N.news_html(got).startswith("<div class='cf-offline-notice cf-news-notice'>Offline: no news")

def test_never_raises_into_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv(N.FEEDS_ENV, 'just words')
    got = N.headlines('BTC', cache_dir=tmp_path)
    assert got.offline and got.items == [] and 'is not name=http(s)://' in got.notice
    blocked = tmp_path / 'file'
    blocked.write_text('a file where the cache folder should be')
    monkeypatch.setenv(N.FEEDS_ENV, 'X=https://x.invalid/rss')
    assert N.headlines('BTC', cache_dir=blocked / 'news').notice.startswith('Offline: no news (X: cannot reach x.invalid')

def test_the_feeds_from_the_environment(server, tmp_path):
    env = {**os.environ, N.FEEDS_ENV: f"Local={server.url('/atom')}", 'PYTHONPATH': os.pathsep.join(sys.path)}
    code = ("import sys; from cryptoforecast import news as N; n = N.headlines('SOL', cache_dir=sys.argv[1]); "
            "print(n.notice, [i['title'] for i in n.items])")
    r = subprocess.run([sys.executable, '-c', code, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None ['Solana validators upgrade']", r.stdout

def test_the_feeds_are_fetched_side_by_side(server, tmp_path):
    server.routes['/slow'] = (200, N.sample_rss(ITEMS), 0.8)
    server.routes['/slow2'] = (200, N.sample_atom(ATOM), 0.8)
    t0 = time.monotonic()
    got = N.headlines(None, {'S': server.url('/slow'), 'T': server.url('/slow2')}, tmp_path, timeout=3)
    assert time.monotonic() - t0 < 1.5 and len(got.items) == 5 and got.notice is None   # one wait of 0.8 s, not two
