// reelay dashboard: sign-in, the API client, routing and the asset views.
// Everything it shows comes from reelay's public API (/v1/...); the API key
// lives in sessionStorage and travels only as a Bearer header.
'use strict';

const KEY_SLOT = 'reelay.apiKey';
const POLL_MS = 1500;

// ---- small DOM helper ------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
// replaceChildren, leaving out the empty parts (the DOM would print "null").
function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function fmtCost(usd) { return usd === null || usd === undefined ? '—' : '$' + Number(usd).toFixed(2); }
function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KB', 'MB', 'GB']; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}
function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
function badge(text) { return h('span', { class: 'badge ' + text }, text.replace(/_/g, ' ')); }

// ---- the API client ---------------------------------------------------------

class SignedOut extends Error {}
class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ('HTTP ' + status));
    this.status = status;
    this.body = body;
  }
}

// `idempotencyKey` names one user action: a retry of that action sends the
// same key, so the API answers it with the first answer instead of doing
// the work twice.
async function api(method, path, body, idempotencyKey) {
  const key = sessionStorage.getItem(KEY_SLOT);
  if (!key) throw new SignedOut();
  const init = { method, headers: { Authorization: 'Bearer ' + key } };
  if (idempotencyKey) init.headers['Idempotency-Key'] = idempotencyKey;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiFailure(0, { error: { message: 'reelay did not answer; is it running?' } });
  }
  if (res.status === 401) throw new SignedOut();
  let json = null;
  try { json = await res.json(); } catch (e) { /* not JSON: the status says it */ }
  if (!res.ok) throw new ApiFailure(res.status, json);
  return json;
}

// crypto.randomUUID exists only in secure contexts (https, localhost); a
// dashboard served over plain http elsewhere builds the same version-4 UUID
// from crypto.getRandomValues (RFC 9562, section 5.4).
function newUuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// One Idempotency-Key per user action. `for(request)` hands back the key of
// the action in progress while the same request is retried, and a fresh
// key once that action has had its answer (`done`) or the request differs.
class ActionKey {
  constructor() { this.request = null; this.key = null; }
  for(request) {
    const text = JSON.stringify(request === undefined ? null : request);
    if (this.key === null || this.request !== text) {
      this.request = text;
      this.key = newUuid();
    }
    return this.key;
  }
  done() { this.request = null; this.key = null; }
}

// ---- sign-in ----------------------------------------------------------------

function showSignIn(message) {
  sessionStorage.removeItem(KEY_SLOT);
  stopPolling();
  state.view = null; // a poll still in flight stops when it returns
  state.options = null;
  $('#app').hidden = true;
  $('#nav').hidden = true;
  $('#signin').hidden = false;
  const err = $('#signin-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('#api-key').value = '';
  $('#api-key').focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $('#api-key').value.trim();
  if (!key) { showSignIn('Enter an API key.'); return; }
  sessionStorage.setItem(KEY_SLOT, key);
  try {
    state.options = await api('GET', '/v1/options');
  } catch (e) {
    if (e instanceof SignedOut) showSignIn('That key was not accepted. Check it and try again.');
    else showSignIn(e.message);
    return;
  }
  $('#signin').hidden = true;
  route();
}

// ---- routing and polling ------------------------------------------------------

const state = { options: null, timer: null, view: null };

function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

function banner(message) {
  const b = $('#banner');
  b.textContent = message || '';
  b.hidden = !message;
}

// Runs `load` now and again every POLL_MS until the route changes; a 401
// anywhere signs out, any other failure shows in the banner and retries.
function poll(token, load) {
  const tick = async () => {
    if (state.view !== token) return;
    try {
      const more = await load();
      banner('');
      if (more === false || state.view !== token) return;
    } catch (e) {
      if (e instanceof SignedOut) { showSignIn('Your key is no longer accepted. Sign in again.'); return; }
      banner(e.message);
    }
    state.timer = setTimeout(tick, POLL_MS);
  };
  tick();
}

async function route() {
  stopPolling();
  banner('');
  if (!sessionStorage.getItem(KEY_SLOT)) { showSignIn(); return; }
  if (!state.options) {
    try { state.options = await api('GET', '/v1/options'); } catch (e) {
      if (e instanceof SignedOut) showSignIn('Your key is no longer accepted. Sign in again.');
      else { showSignIn(e.message); }
      return;
    }
  }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#nav').hidden = false;
  const view = $('#view');
  view.replaceChildren();
  const token = {};
  state.view = token;
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  if (hash === 'new') {
    view.append(renderNewAssetForm(state.options, (id) => { location.hash = '#/asset/' + id; }, api, SignedOut, showSignIn));
  } else if (hash.startsWith('asset/')) {
    const id = hash.slice('asset/'.length);
    const page = new AssetPage(view, id);
    poll(token, () => page.refresh());
  } else {
    const campaign = hash.startsWith('campaign/') ? hash.slice('campaign/'.length) : null;
    const page = new AssetList(view, campaign);
    poll(token, () => page.refresh());
  }
}

// ---- campaigns → assets ------------------------------------------------------

class AssetList {
  constructor(root, campaign) {
    this.campaign = campaign;
    this.campaigns = h('div', { class: 'campaigns' });
    this.summary = h('p', { class: 'muted' });
    this.body = h('tbody');
    root.append(h('section', { class: 'card' },
      h('h1', {}, campaign ? 'Campaign ' + campaign : 'All assets'),
      this.campaigns, this.summary,
      h('table', { id: 'assets' },
        h('thead', {}, h('tr', {}, ['Asset', 'Campaign', 'Profile', 'Status', 'Variations', 'Cost', 'Created'].map((t) => h('th', {}, t)))),
        this.body)));
  }

  async refresh() {
    const all = await api('GET', '/v1/assets?limit=500');
    const names = [...new Set(all.assets.map((a) => a.campaign))].sort();
    this.campaigns.replaceChildren(
      h('a', { href: '#/', class: this.campaign ? '' : 'on' }, 'All'),
      ...names.map((c) => h('a', { href: '#/campaign/' + encodeURIComponent(c), class: c === this.campaign ? 'on' : '' }, c)));
    const assets = all.assets.filter((a) => !this.campaign || a.campaign === this.campaign);
    const cost = assets.reduce((s, a) => s + (a.cost_usd || 0), 0);
    this.summary.textContent = `${assets.length} asset(s), generation cost ${fmtCost(cost)}.`;
    this.body.replaceChildren(...assets.map((a) => h('tr', { class: 'clickable', 'data-asset': a.id, onclick: () => { location.hash = '#/asset/' + a.id; } },
      h('td', {}, h('a', { href: '#/asset/' + a.id }, a.id)),
      h('td', {}, a.campaign), h('td', {}, a.profile), h('td', {}, badge(a.status)),
      h('td', {}, a.variations.map((v) => h('span', { title: v.id }, badge(v.state),
        a.status === 'processing' && v.stage.progress !== null && v.stage.progress !== undefined ? ` ${v.stage.progress}%` : '', ' '))),
      h('td', {}, fmtCost(a.cost_usd)), h('td', {}, fmtTime(a.created_at)))));
    if (!assets.length) this.body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No assets yet. ', h('a', { href: '#/new' }, 'Request one'), '.')));
  }
}

// ---- one asset → its variations ---------------------------------------------

class AssetPage {
  constructor(root, id) {
    this.id = id;
    this.cards = new Map();
    this.head = h('div');
    this.list = h('div');
    root.append(h('section', { class: 'card' }, this.head), this.list);
  }

  async refresh() {
    let a;
    try {
      a = await api('GET', '/v1/assets/' + encodeURIComponent(this.id));
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 404) {
        this.head.replaceChildren(h('h1', {}, 'Asset not found'), h('p', {}, `There is no asset ${this.id}. `, h('a', { href: '#/' }, 'Back to the assets.')));
        return false;
      }
      throw e;
    }
    this.renderHead(a);
    for (const v of a.variations) {
      let card = this.cards.get(v.id);
      if (!card) {
        card = new VariationCard(v.id);
        this.cards.set(v.id, card);
        this.list.append(card.el);
      }
      card.update(v);
    }
    // Keep polling while anything moves; slower once it all settled.
    if (a.status !== 'processing') await new Promise((r) => setTimeout(r, 4 * POLL_MS));
    return true;
  }

  renderHead(a) {
    const g = a.generation || {};
    const reprocess = h('button', { type: 'button', class: 'secondary', id: 'reprocess', onclick: () => this.reprocess(reprocess, note) }, 'Reprocess');
    const note = h('span', { class: 'muted', id: 'reprocess-note' });
    const cancel = h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => this.cancel(cancel, note) }, 'Cancel');
    this.head.replaceChildren(
      h('h1', {}, 'Asset ', h('code', {}, a.id), ' ', badge(a.status)),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Campaign'), h('dd', {}, h('a', { href: '#/campaign/' + encodeURIComponent(a.campaign) }, a.campaign)),
        h('dt', {}, 'Profile'), h('dd', {}, a.profile),
        h('dt', {}, 'Source'), h('dd', {}, a.source),
        h('dt', {}, 'Prompt'), h('dd', {}, g.positivePrompt || '—'),
        h('dt', {}, 'Size'), h('dd', {}, g.width ? `${g.width}x${g.height}, ${g.duration} s, ${g.outputFormat || 'MP4'}` : '—'),
        h('dt', {}, 'Created'), h('dd', {}, fmtTime(a.created_at)),
        h('dt', {}, 'Cost'), h('dd', { id: 'asset-cost' }, fmtCost(a.cost_usd)),
        h('dt', {}, 'Callback'), h('dd', {}, a.callback_url || '—')),
      h('div', {}, reprocess, ' ', cancel, ' ', note,
        h('p', { class: 'hint' }, 'Reprocess reruns transcode, QC and publish from the stored master; the current set stays live until the new one flips. Cancel stops every unfinished variation and takes down what is published.')));
  }

  async cancel(button, note) {
    if (!window.confirm('Cancel this asset? Unfinished variations stop and published files are taken off the CDN.')) return;
    button.disabled = true;
    try {
      const a = await api('DELETE', '/v1/assets/' + encodeURIComponent(this.id));
      note.textContent = `Cancelled: ${a.variations.filter((v) => v.state === 'cancelled').length} variation(s).`;
    } catch (e) {
      if (e instanceof SignedOut) { showSignIn('Your key is no longer accepted. Sign in again.'); return; }
      note.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  async reprocess(button, note) {
    button.disabled = true;
    try {
      if (!this.reprocessKey) this.reprocessKey = new ActionKey();
      const key = this.reprocessKey.for(this.id);
      const a = await api('POST', '/v1/assets/' + encodeURIComponent(this.id) + '/reprocess', undefined, key);
      this.reprocessKey.done();
      note.textContent = `Reprocessing ${(a.reprocessing || []).length} variation(s).`;
    } catch (e) {
      if (e instanceof SignedOut) { showSignIn('Your key is no longer accepted. Sign in again.'); return; }
      note.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }
}

// What a state means, in the words a person uses.
const STATE_WORDS = {
  requested: 'queued for the generator', submitted: 'accepted by the generator', generating: 'the generator is rendering',
  arrived: 'master arrived and checked', transcoding: 'transcoding', checking: 'measuring quality', publishing: 'publishing to the CDN',
  published: 'live on the CDN', rejected: 'did not meet the request or the QC policy', failed: 'did not complete', expired: 'the TTL ran out; taken off the CDN',
  cancelled: 'cancelled; taken off the CDN',
};

class VariationCard {
  constructor(id) {
    this.el = h('section', { class: 'card variation', 'data-variation': id });
    this.status = h('div');
    this.master = h('div');
    this.media = h('div');
    this.qc = h('div');
    this.dest = h('div');
    this.history = h('details', {}, h('summary', {}, 'History'));
    this.el.append(this.status, this.master, this.media, this.dest, this.qc, this.history);
    this.published = null;
    this.qcJson = null;
    this.destJson = null;
  }

  update(v) {
    const pct = v.stage.progress;
    put(this.status, 
      h('h2', {}, `Variation ${v.index} `, badge(v.state), ' ', h('span', { class: 'muted' }, STATE_WORDS[v.state] || '')),
      pct !== null && pct !== undefined && !['published', 'rejected', 'failed', 'expired'].includes(v.state)
        ? h('div', {}, h('div', { class: 'progress' }, h('div', { style: `width:${pct}%` })), h('span', { class: 'muted' }, `${pct}% ${v.stage.detail || ''}`))
        : (v.stage.detail ? h('p', { class: 'muted' }, v.stage.detail) : null),
      v.reason ? h('div', { class: 'reason', 'data-reason': v.reason.code },
        h('strong', {}, v.state === 'rejected' ? 'Why it was rejected: ' : 'What went wrong: '), v.reason.message,
        h('div', { class: 'muted' }, 'code ', h('code', {}, v.reason.code))) : null,
      h('dl', { class: 'kv' }, h('dt', {}, 'Cost'), h('dd', {}, fmtCost(v.cost_usd)), h('dt', {}, 'Task'), h('dd', {}, h('code', {}, v.task_uuid))));
    const m = v.master;
    put(this.master, m ? h('details', { open: ['rejected', 'failed'].includes(v.state) }, h('summary', {}, 'Master as it arrived'), h('dl', { class: 'kv' },
      h('dt', {}, 'Size'), h('dd', {}, m.width ? `${m.width}x${m.height}` : '—'),
      h('dt', {}, 'Duration'), h('dd', {}, m.duration_secs ? m.duration_secs.toFixed(2) + ' s' : '—'),
      h('dt', {}, 'Codecs'), h('dd', {}, [m.video_codec, m.audio_codec].filter(Boolean).join(' + ') || '—'),
      h('dt', {}, 'Bytes'), h('dd', {}, fmtBytes(m.size)),
      h('dt', {}, 'SHA-256'), h('dd', {}, h('code', {}, m.sha256)))) : '');
    const hash = v.published ? v.published.content_hash : null;
    if (hash !== this.published) {
      // Only a new set replaces the players, so a poll never stops playback.
      this.published = hash;
      put(this.media, v.published ? renderPublished(v.published) : null);
    }
    const qcJson = JSON.stringify(v.qc || null);
    if (qcJson !== this.qcJson) {
      this.qcJson = qcJson;
      put(this.qc, v.qc ? renderQc(v.qc) : null);
    }
    const destJson = JSON.stringify(v.destinations || []);
    if (destJson !== this.destJson) {
      this.destJson = destJson;
      put(this.dest, v.destinations && v.destinations.length ? renderDestinations(v.destinations) : null);
    }
    const open = this.history.open;
    this.history.replaceChildren(h('summary', {}, `History (${(v.history || []).length})`),
      h('table', {}, (v.history || []).map((t) => h('tr', {}, h('td', {}, fmtTime(t.at)), h('td', {}, `${t.from} → ${t.to}`), h('td', { class: 'muted' }, t.note || '')))));
    this.history.open = open;
  }
}

// Each buyer the asset names: ready (with its own VAST) or not, and why.
function renderDestinations(list) {
  return h('div', { class: 'destinations' },
    h('h3', {}, 'Destinations'),
    h('table', { class: 'destinations' },
      h('thead', {}, h('tr', {}, ['Destination', 'Verdict', 'Files it takes', 'Why not', 'VAST'].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((d) => h('tr', { class: d.passed ? 'pass' : 'fail', 'data-destination': d.name },
        h('td', {}, d.name),
        h('td', {}, badge(d.passed ? 'ready' : 'not_ready')),
        h('td', {}, (d.files || []).join(', ') || '—'),
        h('td', { class: 'muted' }, (d.reasons || []).map((r) => `${r.subject} ${r.rule}: ${r.measured} (limit ${r.limit})`).join('; ')),
        h('td', {}, d.vast_url ? h('a', { href: d.vast_url, target: '_blank', rel: 'noopener' }, 'vast') : '—'))))));
}

function renderQc(qc) {
  const checks = qc.checks || qc.failures || [];
  const failed = checks.filter((c) => !c.passed).length;
  return h('div', { class: 'qc' },
    h('h3', {}, 'Quality control ', badge(qc.verdict), ' ',
      h('span', { class: 'muted' }, `${checks.length} rule(s), ${failed} failed; SSIM floor ${Number(qc.ssim_floor).toFixed(4)} for outputQuality ${qc.output_quality}`)),
    h('table', { class: 'qc-rules' },
      h('thead', {}, h('tr', {}, ['Subject', 'Rule', 'Threshold', 'Measured', 'Result', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, checks.map((c) => h('tr', { class: c.passed ? 'pass' : 'fail' },
        h('td', {}, c.subject), h('td', {}, c.rule), h('td', {}, c.threshold), h('td', {}, c.measured),
        h('td', {}, badge(c.passed ? 'pass' : 'fail')), h('td', { class: 'muted' }, c.reason || ''))))),
    qc.renditions && qc.renditions.length ? h('details', {}, h('summary', {}, 'Measurements per rendition'),
      h('table', {}, h('thead', {}, h('tr', {}, ['Rendition', 'Size', 'SSIM', 'PSNR', 'Bitrate', 'Bytes', 'moov first'].map((t) => h('th', {}, t)))),
        h('tbody', {}, qc.renditions.map((r) => h('tr', {},
          h('td', {}, r.name), h('td', {}, r.width ? `${r.width}x${r.height}` : '—'), h('td', {}, r.ssim.toFixed(4)),
          h('td', {}, r.psnr_db.toFixed(1) + ' dB'), h('td', {}, r.bit_rate ? Math.round(r.bit_rate / 1000) + ' kb/s' : '—'),
          h('td', {}, fmtBytes(r.size_bytes)), h('td', {}, r.moov_first ? 'yes' : 'no')))))) : null);
}

window.addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', () => showSignIn());
  window.addEventListener('hashchange', route);
  route();
});
