"""The web page in a real headless Chromium (Debian's chromium, driven by Playwright)."""

import json
import os
import urllib.request

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from trajcross_jax.serve import app as app_lib

CHROMIUM = os.environ.get('TRAJCROSS_CHROMIUM', '/usr/bin/chromium')
# As this machine's probe starts it: no sandbox (root), no background traffic (no network).
FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]


def search(base, trajectory):
  request = urllib.request.Request(
    base + '/search',
    data=json.dumps({'trajectory': trajectory, 'k': 10}).encode(),
    headers={'Content-Type': 'application/json'},
  )
  with urllib.request.urlopen(request, timeout=60) as response:
    return json.loads(response.read())['results']


@pytest.fixture(scope='module')
def browser():
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield browser
    browser.close()


def test_draw_a_trajectory_see_its_image_first_click_it(demo_service, browser, tmp_path):
  base, source = demo_service
  # A test trajectory that the demo model finds first as the page sends it: the drawn line,
  # resampled evenly along its length (the service's rule for a line without times), also when
  # the mouse's pixels move it by a few centimetres (the re-ranker sees positions that finely).
  for i in range(50):
    points = np.asarray(source[i]['trajectory'], np.float64)
    drawn = app_lib.resample_to(points, len(points))
    shifts = ((0.0, 0.0), (0.03, -0.03), (-0.03, 0.03))
    if all(search(base, (drawn + s).tolist())[0]['id'] == i for s in shifts):
      break
  else:
    pytest.fail('none of 50 test trajectories is found first by the demo model')
  page = browser.new_page(viewport={'width': 1300, 'height': 950})
  page.goto(base + '/')
  page.wait_for_selector('#status.ready', timeout=60_000)
  corners = [page.evaluate(f'window.trajcross.toPage({x}, {y})') for x, y in points]
  page.mouse.move(*corners[0])
  page.mouse.down()
  for corner in corners[1:]:
    page.mouse.move(*corner, steps=4)
  page.mouse.up()
  page.wait_for_selector('.card', timeout=30_000)
  cards = page.locator('.card')
  assert cards.count() == 10
  assert cards.first.get_attribute('data-id') == str(i)
  assert cards.first.get_attribute('data-modality') == 'image'
  assert page.url.split('#', 1)[1].startswith('q=traj:')
  page.screenshot(path=str(tmp_path / 'page_drawn.png'))
  # Click the first result: the page searches with that image, and the URL says so.
  cards.first.click()
  page.wait_for_function(f"location.hash === '#q=item:image:{i}'", timeout=30_000)
  page.wait_for_selector('.card[data-modality="trajectory"]', timeout=30_000)
  screenshot = tmp_path / 'page_clicked.png'
  page.screenshot(path=str(screenshot))
  assert screenshot.stat().st_size > 10_000
  print(f'screenshots: {tmp_path}')
  # The URL alone reproduces the search: open it in a fresh page.
  shared = browser.new_page()
  shared.goto(page.url)
  shared.wait_for_selector('.card[data-modality="trajectory"]', timeout=60_000)
  first = shared.locator('.card').first.get_attribute('data-id')
  assert first == page.locator('.card').first.get_attribute('data-id')


def test_a_rejected_query_is_said_on_the_page(demo_service, browser):
  base, _ = demo_service
  page = browser.new_page()
  page.goto(base + '/#q=item:image:99999')
  page.wait_for_selector('#status.error', timeout=60_000)
  assert 'rejected: no item 99999' in page.locator('#status').text_content()


def test_the_page_says_when_the_service_is_loading(browser, tmp_path):
  # A service whose galleries never finish loading: the page must say so.
  import threading
  import time

  import uvicorn

  release = threading.Event()

  def slow_loader():
    release.wait(60)
    return {}

  server = uvicorn.Server(
    uvicorn.Config(app_lib.create_app(slow_loader), port=0, log_level='error')
  )
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  while not server.started:
    time.sleep(0.05)
  port = server.servers[0].sockets[0].getsockname()[1]
  page = browser.new_page()
  page.goto(f'http://127.0.0.1:{port}/')
  page.wait_for_selector('#status.loading', timeout=30_000)
  assert 'loading' in page.locator('#status').text_content()
  release.set()
  server.should_exit = True
  thread.join(30)
