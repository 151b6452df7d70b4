// The search page: draw, pick or upload a query; see the top-k; click a result to search with it.
// The URL's hash holds the query (#q=traj:x,y;x,y;... or #q=item:<modality>:<id>), so a search
// can be shared. Everything here is served by the service itself: nothing from the internet.
'use strict';

const canvas = document.getElementById('scene');
const ctx = canvas.getContext('2d');
const statusEl = document.getElementById('status');
const indexSelect = document.getElementById('index');
const resultsEl = document.getElementById('results');
const titleEl = document.getElementById('results-title');
const MARGIN = 40;  // Pixels left for the axes.

const state = { indexes: [], current: null, drawing: false, points: [], lastQuery: null, results: null };

function setStatus(text, kind) {
  statusEl.textContent = text;
  statusEl.className = 'status ' + kind;
}

function extent() {
  const e = state.current ? state.current.extent : [0, 0, 1, 1];
  const side = Math.max(e[2] - e[0], e[3] - e[1]);
  return { x0: e[0], y0: e[1], side };
}

// World metres <-> canvas pixels (north up), inside the axes' margin.
function toPixel(x, y) {
  const e = extent();
  const size = canvas.width - 2 * MARGIN;
  return [MARGIN + (x - e.x0) / e.side * size, canvas.height - MARGIN - (y - e.y0) / e.side * size];
}
function toWorld(px, py) {
  const e = extent();
  const size = canvas.width - 2 * MARGIN;
  return [e.x0 + (px - MARGIN) / size * e.side, e.y0 + (canvas.height - MARGIN - py) / size * e.side];
}

function drawScene() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const e = extent();
  ctx.strokeStyle = '#bbb';
  ctx.fillStyle = '#444';
  ctx.font = '11px sans-serif';
  const size = canvas.width - 2 * MARGIN;
  ctx.strokeRect(MARGIN, MARGIN, size, size);
  const step = niceStep(e.side / 6);
  for (let v = Math.ceil(e.x0 / step) * step; v <= e.x0 + e.side; v += step) {
    const [px] = toPixel(v, e.y0);
    ctx.beginPath(); ctx.moveTo(px, MARGIN); ctx.lineTo(px, MARGIN + size); ctx.stroke();
    ctx.fillText(v.toFixed(step < 1 ? 1 : 0), px - 8, canvas.height - MARGIN + 14);
  }
  for (let v = Math.ceil(e.y0 / step) * step; v <= e.y0 + e.side; v += step) {
    const [, py] = toPixel(e.x0, v);
    ctx.beginPath(); ctx.moveTo(MARGIN, py); ctx.lineTo(MARGIN + size, py); ctx.stroke();
    ctx.fillText(v.toFixed(step < 1 ? 1 : 0), 4, py + 4);
  }
  ctx.fillText('x (m)', canvas.width / 2, canvas.height - 6);
  ctx.save(); ctx.translate(12, canvas.height / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText('y (m)', 0, 0); ctx.restore();
  if (state.points.length) {
    ctx.strokeStyle = '#e07b00';
    ctx.lineWidth = 3;
    ctx.beginPath();
    state.points.forEach(([x, y], i) => {
      const [px, py] = toPixel(x, y);
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
    ctx.lineWidth = 1;
    const [sx, sy] = toPixel(...state.points[0]);
    ctx.fillStyle = '#2a9d3a';
    ctx.beginPath(); ctx.arc(sx, sy, 4, 0, 2 * Math.PI); ctx.fill();
  }
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function eventPoint(event) {
  const r = canvas.getBoundingClientRect();
  const px = (event.clientX - r.left) * canvas.width / r.width;
  const py = (event.clientY - r.top) * canvas.height / r.height;
  return toWorld(px, py);
}

canvas.addEventListener('mousedown', (event) => {
  state.drawing = true;
  state.points = [eventPoint(event)];
  drawScene();
});
canvas.addEventListener('mousemove', (event) => {
  if (!state.drawing) return;
  state.points.push(eventPoint(event));
  drawScene();
});
window.addEventListener('mouseup', () => {
  if (!state.drawing) return;
  state.drawing = false;
  if (state.points.length < 2) { setStatus('rejected: draw a line, not a dot', 'error'); return; }
  search({ trajectory: state.points }, 'traj:' + state.points.map(
    ([x, y]) => x.toFixed(3) + ',' + y.toFixed(3)).join(';'));
});
document.getElementById('clear').addEventListener('click', () => { state.points = []; drawScene(); });
document.getElementById('pick').addEventListener('click', () => {
  const id = parseInt(document.getElementById('item-id').value, 10);
  const modality = document.getElementById('item-modality').value;
  searchItem(modality, id);
});
document.getElementById('upload').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const box = ['x_left', 'y_top', 'x_right', 'y_bottom'].map((k) => parseFloat(form.get(k)));
  const body = new FormData();
  body.append('image', form.get('image'));
  body.append('box', JSON.stringify(box));
  body.append('k', document.getElementById('k').value);
  body.append('index', indexSelect.value);
  await run(fetch('/search', { method: 'POST', body }), null, 'uploaded image');
});
indexSelect.addEventListener('change', () => {
  state.current = state.indexes.find((i) => i.name === indexSelect.value);
  drawScene();
});

function searchItem(modality, id) {
  return search({ item: { modality, id } }, `item:${modality}:${id}`);
}

function search(query, hash) {
  const body = Object.assign({ k: parseInt(document.getElementById('k').value, 10),
                               index: indexSelect.value }, query);
  const request = fetch('/search', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                     body: JSON.stringify(body) });
  return run(request, hash, describe(query));
}

function describe(query) {
  if (query.trajectory) return `the drawn trajectory (${query.trajectory.length} points)`;
  return `${query.item.modality} ${query.item.id} of the gallery`;
}

async function run(request, hash, what) {
  setStatus('searching…', 'loading');
  let response;
  try { response = await request; } catch (error) {
    setStatus('rejected: the service cannot be reached', 'error'); return;
  }
  const data = await response.json();
  if (!response.ok) { setStatus('rejected: ' + data.error, 'error'); return; }
  if (hash && location.hash !== '#q=' + hash) history.pushState(null, '', '#q=' + hash);
  state.results = data;
  setStatus('ready', 'ready');
  showResults(data, what);
}

function showResults(data, what) {
  const noun = data.result_modality === 'image' ? 'images' : 'trajectories';
  titleEl.textContent = `Top ${data.results.length} ${noun} for ${what}`;
  resultsEl.innerHTML = '';
  for (const hit of data.results) {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.id = hit.id;
    card.dataset.modality = data.result_modality;
    card.title = `search with ${data.result_modality} ${hit.id}`;
    if (data.result_modality === 'image') {
      const img = document.createElement('img');
      img.src = `/items/${encodeURIComponent(data.index)}/${hit.id}?modality=image`;
      img.alt = `image ${hit.id}`;
      card.appendChild(img);
    } else {
      const small = document.createElement('canvas');
      small.width = 140; small.height = 140;
      card.appendChild(small);
      drawTrajectory(small, data.index, hit);
    }
    const label = document.createElement('div');
    // Re-ranked hits are ordered by the cross-encoder: show its score beside the bi-encoder's.
    const rerank = hit.rerank_score === undefined || hit.rerank_score === null
      ? '' : ` <span class="rerank" title="re-ranker score">| ${hit.rerank_score.toFixed(2)}</span>`;
    label.innerHTML = `#${hit.rank} id ${hit.id}<br><span class="score" title="bi-encoder score">${hit.score.toFixed(3)}</span>${rerank}`;
    card.appendChild(label);
    card.addEventListener('click', () => searchItem(data.result_modality, hit.id));
    resultsEl.appendChild(card);
  }
}

async function drawTrajectory(small, index, hit) {
  const response = await fetch(`/items/${encodeURIComponent(index)}/${hit.id}?modality=trajectory`);
  const item = await response.json();
  const [xl, yt, xr, yb] = item.box;
  const c = small.getContext('2d');
  c.fillStyle = '#000'; c.fillRect(0, 0, small.width, small.height);
  c.strokeStyle = '#fff'; c.lineWidth = 2; c.beginPath();
  item.trajectory.forEach(([x, y], i) => {
    const px = (x - xl) / (xr - xl) * small.width, py = (yt - y) / (yt - yb) * small.height;
    if (i === 0) c.moveTo(px, py); else c.lineTo(px, py);
  });
  c.stroke();
}

function fromHash() {
  const match = /^#q=(.*)$/.exec(decodeURIComponent(location.hash));
  if (!match) return;
  const q = match[1];
  if (q.startsWith('traj:')) {
    state.points = q.slice(5).split(';').map((p) => p.split(',').map(Number));
    drawScene();
    search({ trajectory: state.points }, q);
  } else if (q.startsWith('item:')) {
    const [, modality, id] = q.split(':');
    searchItem(modality, parseInt(id, 10));
  }
}
window.addEventListener('popstate', fromHash);

async function start() {
  drawScene();
  for (;;) {
    try {
      const health = await fetch('/health');
      const body = await health.json();
      if (health.ok) break;
      if (body.status === 'failed') { setStatus('the service failed to load: ' + body.error, 'error'); return; }
    } catch (error) { /* The service is starting. */ }
    setStatus('loading: the model is compiling…', 'loading');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const data = await (await fetch('/indexes')).json();
  state.indexes = data.indexes;
  indexSelect.innerHTML = state.indexes.map((i) => `<option>${i.name}</option>`).join('');
  state.current = state.indexes[0];
  drawScene();
  setStatus('ready', 'ready');
  fromHash();
}

// Page coordinates of a world point, for tests that draw with the mouse.
function toPage(x, y) {
  const [px, py] = toPixel(x, y);
  const r = canvas.getBoundingClientRect();
  return [r.left + px * r.width / canvas.width, r.top + py * r.height / canvas.height];
}

window.trajcross = { toPixel, toWorld, toPage, state, canvas };
start();
