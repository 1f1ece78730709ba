// reelay dashboard: what a published variation shows: a player per
// rendition (MP4/WebM natively, HLS through the pinned hls.js reelay serves),
// the posters, storyboard scrubbing from the sprite and its WebVTT, and the
// links to the manifest, the VAST and the QC report.
'use strict';

const HLS_SRC = '/dashboard/hls-1.7.4.light.min.js';
let hlsLoading = null;

// Loads hls.js once, from reelay itself.
function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = HLS_SRC;
      s.onload = () => resolve(window.Hls);
      s.onerror = () => reject(new Error('hls.js could not be loaded'));
      document.head.append(s);
    });
  }
  return hlsLoading;
}

function renderPublished(p) {
  const players = h('div', { class: 'players' });
  const videos = [];
  for (const r of p.renditions) {
    const video = h('video', { controls: true, preload: 'metadata', playsinline: true, crossorigin: 'anonymous', poster: p.poster_url, src: r.url, 'data-rendition': r.name });
    videos.push(video);
    players.append(h('div', { class: 'player' }, video,
      h('div', {}, h('strong', {}, r.name), ' ', h('span', { class: 'meta' },
        `${r.width}x${r.height} · ${r.container} · ${r.codecs || ''} · ${r.bitrate_kbps} kb/s · ${fmtBytes(r.size)}`),
      ' ', h('a', { href: r.url, target: '_blank', rel: 'noopener' }, 'file'))));
  }
  if (p.hls) players.append(renderHls(p, videos));
  const first = videos[0];
  return h('div', { class: 'published' },
    h('h3', {}, 'Renditions'),
    players,
    p.storyboard && first ? renderStoryboard(p.storyboard, videos) : null,
    h('h3', {}, 'Posters'),
    h('div', { class: 'posters' }, p.posters.map((ps) => h('a', { href: ps.url, target: '_blank', rel: 'noopener', title: `${ps.width}x${ps.height} ${ps.format}` },
      h('img', { src: ps.url, alt: `poster ${ps.width}x${ps.height} ${ps.format}`, loading: 'lazy' }))),
    p.preview_url ? h('a', { href: p.preview_url, target: '_blank', rel: 'noopener', title: 'animated preview' }, h('img', { src: p.preview_url, alt: 'animated preview', loading: 'lazy' })) : null),
    h('h3', {}, 'Delivery'),
    h('p', { class: 'links' },
      h('a', { href: p.manifest_url, target: '_blank', rel: 'noopener', 'data-link': 'manifest' }, 'manifest.json'),
      h('a', { href: p.vast_url, target: '_blank', rel: 'noopener', 'data-link': 'vast' }, 'vast.xml (VAST 4.2)'),
      h('a', { href: p.qc_report_url, target: '_blank', rel: 'noopener', 'data-link': 'qc' }, 'qc.json'),
      p.hls ? h('a', { href: p.hls.master_url, target: '_blank', rel: 'noopener' }, 'hls/master.m3u8') : null),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Content hash'), h('dd', {}, h('code', {}, p.content_hash)),
      h('dt', {}, 'Universal Ad ID'), h('dd', {}, h('code', {}, p.universal_ad_id)),
      h('dt', {}, 'Expires'), h('dd', {}, fmtTime(p.expires_at)),
      h('dt', {}, 'Files'), h('dd', {}, String(p.file_count))));
}

// The HLS set in one player: hls.js where Media Source Extensions exist,
// the browser's own HLS (Safari) otherwise; a level picker beside it.
function renderHls(p, videos) {
  const video = h('video', { controls: true, preload: 'none', playsinline: true, crossorigin: 'anonymous', poster: p.poster_url, 'data-rendition': 'hls' });
  videos.push(video);
  const levels = h('select', { 'aria-label': 'HLS level', disabled: true }, h('option', { value: '-1' }, 'auto'));
  const status = h('span', { class: 'meta' }, `${p.hls.variants.length} level(s): ${p.hls.variants.map((v) => v.name).join(', ')}`);
  const start = async () => {
    if (video.dataset.attached) return;
    video.dataset.attached = '1';
    if (video.canPlayType('application/vnd.apple.mpegurl') && !window.MediaSource) {
      video.src = p.hls.master_url;
      return;
    }
    try {
      const Hls = await loadHls();
      if (!Hls.isSupported()) { status.textContent = 'this browser cannot play HLS'; return; }
      const hls = new Hls();
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        levels.replaceChildren(h('option', { value: '-1' }, 'auto'),
          ...data.levels.map((l, i) => h('option', { value: String(i) }, `${l.height}p · ${Math.round(l.bitrate / 1000)} kb/s`)));
        levels.disabled = false;
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => { status.textContent = `playing level ${data.level}`; });
      hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) status.textContent = 'HLS error: ' + data.details; });
      levels.addEventListener('change', () => { hls.currentLevel = Number(levels.value); });
      hls.loadSource(p.hls.master_url);
      hls.attachMedia(video);
    } catch (e) {
      status.textContent = e.message;
    }
  };
  video.addEventListener('play', start, { once: true });
  // Attach when the player is first shown, so the level list is there to pick from.
  new IntersectionObserver((entries, obs) => {
    if (entries.some((e) => e.isIntersecting)) { obs.disconnect(); start(); }
  }).observe(video);
  return h('div', { class: 'player' }, video, h('div', {}, h('strong', {}, 'HLS'), ' ', levels, ' ', status));
}

// Parses the storyboard WebVTT: cues of `start --> end` and `sprite.jpg#xywh=x,y,w,h`.
function parseStoryboard(text, base) {
  const toSecs = (t) => t.split(':').reduce((acc, part) => acc * 60 + parseFloat(part), 0);
  const cues = [];
  for (const block of text.replace(/\r/g, '').split(/\n\n+/)) {
    const lines = block.split('\n').filter(Boolean);
    const timing = lines.findIndex((l) => l.includes('-->'));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [start, end] = lines[timing].split('-->').map((s) => toSecs(s.trim().split(' ')[0]));
    const [file, frag] = lines[timing + 1].trim().split('#xywh=');
    if (!frag) continue;
    const [x, y, w, hh] = frag.split(',').map(Number);
    cues.push({ start, end, url: new URL(file, base).href, x, y, w, h: hh });
  }
  return cues;
}

// A strip under the players: hovering shows the sprite frame for that
// moment, clicking seeks every player there.
function renderStoryboard(sb, videos) {
  const strip = h('div', { class: 'storyboard', title: 'hover to preview, click to seek' });
  const thumb = h('div', { class: 'thumb', hidden: true });
  const cursor = h('div', { class: 'cursor', hidden: true });
  const note = h('span', { class: 'muted' }, 'loading storyboard…');
  strip.append(thumb, cursor);
  let cues = [];
  fetch(sb.vtt_url).then((r) => {
    if (!r.ok) throw new Error('storyboard: HTTP ' + r.status);
    return r.text();
  }).then((text) => {
    cues = parseStoryboard(text, sb.vtt_url);
    strip.dataset.cues = String(cues.length);
    note.textContent = `${cues.length} frames`;
  }).catch((e) => { note.textContent = e.message; });
  const at = (ev) => {
    const box = strip.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
    const total = cues.length ? cues[cues.length - 1].end : 0;
    return { frac, t: frac * total, px: frac * box.width };
  };
  strip.addEventListener('mousemove', (ev) => {
    const { t, px } = at(ev);
    const cue = cues.find((c) => t >= c.start && t < c.end) || cues[cues.length - 1];
    if (!cue) return;
    Object.assign(thumb.style, {
      width: cue.w + 'px', height: cue.h + 'px', left: Math.max(0, px - cue.w / 2) + 'px',
      backgroundImage: `url("${cue.url}")`, backgroundPosition: `-${cue.x}px -${cue.y}px`,
    });
    cursor.style.left = px + 'px';
    thumb.hidden = false;
    cursor.hidden = false;
  });
  strip.addEventListener('mouseleave', () => { thumb.hidden = true; cursor.hidden = true; });
  strip.addEventListener('click', (ev) => {
    const { t } = at(ev);
    for (const v of videos) if (v.readyState > 0) v.currentTime = t;
  });
  return h('div', {}, h('h3', {}, 'Storyboard ', note), strip);
}
