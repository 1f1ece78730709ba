// Drives the system Chromium headless (playwright-core, no browser download)
// for tests/browser.rs. Prints one JSON line of facts the Rust test asserts
// on, and fails itself (exit 1) when a step cannot happen at all.
//
// env: CHROMIUM, REELAY_URL, PAGE_URL (another origin), API_KEY,
//      PUBLISHED_ASSET, REJECTED_ASSET, SCREENSHOTS (folder)
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const env = process.env;
const REELAY = env.REELAY_URL;
const KEY = env.API_KEY;
const SHOTS = env.SCREENSHOTS;
const LONG = 900_000; // a 4K generation, transcode and QC on a busy machine

// Without the background-networking flags Chromium's own connections are
// refused by a closed network; a fresh profile keeps runs independent.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

async function api(path) {
  const res = await fetch(REELAY + path, { headers: { Authorization: 'Bearer ' + KEY } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function waitPublished(id) {
  const start = Date.now();
  for (;;) {
    const a = await api('/v1/assets/' + id);
    if (a.status === 'published') return a;
    if (a.status !== 'processing') throw new Error(`asset ${id} ended ${a.status}: ${JSON.stringify(a.variations.map((v) => v.reason))}`);
    if (Date.now() - start > LONG) throw new Error(`asset ${id} not published in time`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// Everything a player on the publisher's origin does with a published set.
async function crossOrigin(page, p) {
  await page.goto(env.PAGE_URL);
  await page.addScriptTag({ url: REELAY + '/dashboard/hls-1.7.4.light.min.js' });
  const mp4 = p.renditions.find((r) => r.container === 'mp4');
  const facts = await page.evaluate(async ({ p, mp4 }) => {
    const within = (ms, what, fn) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out: ' + what)), ms);
      fn((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
    });
    const until = (what, cond) => within(60000, what, (ok) => {
      const tick = () => (cond() ? ok() : setTimeout(tick, 50));
      tick();
    });
    const event = (target, name, what) => within(60000, what, (ok, fail) => {
      target.addEventListener(name, ok, { once: true });
      target.addEventListener('error', () => fail(new Error(what + ': error event')), { once: true });
    });
    const out = {};
    const box = document.getElementById('players');

    const v = document.createElement('video');
    v.crossOrigin = 'anonymous'; v.muted = true; v.preload = 'auto'; v.width = 480; v.controls = true;
    v.poster = p.poster_url;
    v.src = mp4.url;
    box.append(v);
    await until('mp4 readyState >= 3', () => v.readyState >= 3);
    out.mp4ReadyState = v.readyState;
    out.mp4Duration = v.duration;
    v.currentTime = v.duration / 2;
    await event(v, 'seeked', 'mp4 seek');
    out.seekedTo = v.currentTime;
    await v.play();
    await until('mp4 plays after the seek', () => v.currentTime > out.seekedTo + 0.2);
    v.pause();
    out.mp4PlayedTo = v.currentTime;

    const img = new Image();
    img.crossOrigin = 'anonymous';
    img.src = p.poster_url;
    await img.decode();
    out.posterWidth = img.naturalWidth;

    const tv = document.createElement('video');
    tv.crossOrigin = 'anonymous'; tv.muted = true; tv.preload = 'metadata'; tv.width = 480; tv.src = mp4.url;
    const track = document.createElement('track');
    track.kind = 'metadata'; track.src = p.storyboard.vtt_url;
    tv.append(track);
    box.append(tv);
    track.track.mode = 'hidden';
    await event(track, 'load', 'storyboard track');
    out.storyboardCues = track.track.cues.length;

    const m = await fetch(p.manifest_url);
    const manifest = await m.json();
    out.manifest = { status: m.status, renditions: manifest.renditions.length };

    // The request's captions, through the browser's own WebVTT parser.
    out.captionCues = [];
    for (const c of manifest.captions || []) {
      const cv = document.createElement('video');
      cv.crossOrigin = 'anonymous'; cv.muted = true; cv.preload = 'metadata'; cv.width = 240; cv.src = mp4.url;
      const t = document.createElement('track');
      t.kind = 'captions'; t.srclang = c.language; t.label = c.label; t.src = c.url;
      cv.append(t);
      box.append(cv);
      t.track.mode = 'hidden';
      await event(t, 'load', `captions track ${c.language}`);
      out.captionCues.push({ language: c.language, cues: t.track.cues.length });
    }
    const x = await fetch(p.vast_url);
    const xml = new DOMParser().parseFromString(await x.text(), 'application/xml');
    out.vast = { status: x.status, mediaFiles: xml.getElementsByTagName('MediaFile').length };

    // hls.js: every level of the master playlist, a fragment of each, then play.
    const hv = document.createElement('video');
    hv.muted = true; hv.width = 480; hv.controls = true;
    box.append(hv);
    const Hls = window.Hls;
    if (!Hls || !Hls.isSupported()) throw new Error('hls.js is not supported here');
    const hls = new Hls({ startLevel: 0, capLevelToPlayerSize: false });
    const withFragments = new Set();
    hls.on(Hls.Events.FRAG_LOADED, (_e, d) => withFragments.add(d.frag.level));
    let fatal = null;
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) fatal = d.details; });
    const parsed = within(60000, 'hls manifest', (ok) => hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => ok(d)));
    hls.loadSource(p.hls.master_url);
    hls.attachMedia(hv);
    const levels = (await parsed).levels;
    out.hlsLevels = levels.length;
    for (let i = 0; i < levels.length; i++) {
      hls.currentLevel = i;
      await until(`a fragment of level ${i}`, () => withFragments.has(i) || fatal);
      if (fatal) throw new Error('hls.js: ' + fatal);
    }
    out.hlsLevelsWithFragments = [...withFragments].sort();
    await hv.play();
    await until('hls plays', () => hv.currentTime > 0.3 || fatal);
    if (fatal) throw new Error('hls.js: ' + fatal);
    out.hlsPlayedTo = hv.currentTime;
    return out;
  }, { p, mp4 });
  await page.screenshot({ path: join(SHOTS, 'cross-origin.png'), fullPage: true });
  return facts;
}

// The set's HLS subtitles in the full hls.js build (the light build the
// dashboard serves has no subtitle support): the master's SUBTITLES group
// becomes hls.js subtitle tracks, and the selected one's WebVTT loads
// into the video's text track.
async function subtitles(page, p) {
  await page.goto(env.PAGE_URL);
  const here = dirname(fileURLToPath(import.meta.url));
  await page.addScriptTag({ path: join(here, 'node_modules/hls.js/dist/hls.min.js') });
  return page.evaluate(async ({ p }) => {
    const within = (ms, what, fn) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out: ' + what)), ms);
      fn((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
    });
    const Hls = window.Hls;
    const hv = document.createElement('video');
    hv.muted = true; hv.width = 480;
    document.getElementById('players').append(hv);
    const hls = new Hls({ renderTextTracksNatively: true });
    let fatal = null;
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal || d.type === 'networkError') fatal = d.details; });
    const tracks = within(60000, 'subtitle tracks', (ok) => hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, d) => ok(d.subtitleTracks)));
    hls.loadSource(p.hls.master_url);
    hls.attachMedia(hv);
    const list = await tracks;
    const out = { tracks: list.map((t) => ({ lang: t.lang, name: t.name, groupId: t.groupId, default: t.default })) };
    const frag = within(60000, 'a subtitle fragment', (ok, fail) => hls.on(Hls.Events.SUBTITLE_FRAG_PROCESSED, (_e, d) => (d.success ? ok(d) : fail(new Error('subtitle fragment failed')))));
    hls.subtitleDisplay = true;
    hls.subtitleTrack = 0;
    await frag;
    if (fatal) throw new Error('hls.js: ' + fatal);
    const tt = [...hv.textTracks].find((t) => t.language === list[0].lang && t.cues && t.cues.length);
    out.cues = tt ? [...tt.cues].map((c) => c.text) : [];
    hls.destroy();
    return out;
  }, { p });
}

// The dashboard as an ad-ops user meets it.
async function dashboard(page) {
  const out = {};
  // No key: straight to the sign-in, whatever the address asks for.
  await page.goto(REELAY + '/#/asset/' + env.PUBLISHED_ASSET);
  await page.waitForSelector('#signin:not([hidden])');
  out.noKeyShowsSignIn = await page.isHidden('#app');
  await page.screenshot({ path: join(SHOTS, 'signin.png') });

  await page.fill('#api-key', 'not-the-key');
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signin-error:not([hidden])');
  out.wrongKeyShowsSignIn = (await page.textContent('#signin-error')).includes('not accepted') && await page.isHidden('#app');

  await page.fill('#api-key', KEY);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#app:not([hidden]) section.variation');

  // The buyers the asset names, each with its verdict; a ready one links
  // its own VAST once the set is published.
  await page.waitForSelector('section.variation table.destinations tr[data-destination="ttd"] a', { timeout: LONG });
  out.destinations = await page.$$eval('section.variation table.destinations tbody tr', (rows) =>
    rows.map((r) => `${r.cells[0].textContent}|${r.cells[1].textContent}|${r.querySelector('a') ? r.querySelector('a').href.split('/').pop() : ''}`));
  await page.screenshot({ path: join(SHOTS, 'asset-destinations.png'), fullPage: true });

  // Every POST the dashboard makes carries an Idempotency-Key.
  const postKeys = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/assets') {
      postKeys.push(r.headers()['idempotency-key'] || null);
    }
  });

  // The API's 400 names the field; the form shows it beside that field.
  await page.click('#new-asset');
  await page.waitForSelector('#asset-form');
  await page.fill('#f-campaign', 'dashboard');
  await page.selectOption('#f-profile', 'web');
  await page.fill('#f-prompt', 'x');
  await page.fill('#f-duration', '3');
  await page.click('#asset-form button[type=submit]');
  const err = await page.waitForSelector('.field[data-path="generation.positivePrompt"] .field-error');
  out.promptError = await err.textContent();
  await page.screenshot({ path: join(SHOTS, 'form-errors.png'), fullPage: true });

  await page.fill('#f-prompt', 'A red convertible on a coastal road at sunset, drone shot');
  await page.click('#asset-form button[type=submit]');
  await page.waitForURL(/#\/asset\/ast_/);
  out.createdAsset = decodeURIComponent(new URL(page.url()).hash).replace('#/asset/', '');
  out.createKeys = postKeys;
  await page.waitForSelector('section.variation h2 .badge.published', { timeout: LONG });
  await page.waitForSelector('table.qc-rules tbody tr');

  // Its player plays.
  const video = page.locator('video[data-rendition]').first();
  out.playedTo = await video.evaluate(async (v) => {
    v.muted = true;
    await v.play();
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the dashboard player did not play')), 60000);
      const tick = () => (v.currentTime > 0.3 ? (clearTimeout(t), resolve()) : setTimeout(tick, 50));
      tick();
    });
    v.pause();
    return v.currentTime;
  });
  out.qcRows = await page.$$eval('table.qc-rules tbody tr', (rows) => rows.map((r) => `${r.cells[0].textContent}|${r.cells[1].textContent}`));
  out.qcResults = await page.$$eval('table.qc-rules tbody tr td .badge', (b) => b.filter((x) => ['pass', 'fail'].includes(x.textContent)).length);
  await page.waitForSelector('.storyboard[data-cues]');
  await page.screenshot({ path: join(SHOTS, 'asset-published.png'), fullPage: true });
  await page.locator('.storyboard').scrollIntoViewIfNeeded();
  const strip = await page.locator('.storyboard').boundingBox();
  // Hovering the storyboard strip shows that moment's frame from the sprite.
  await page.mouse.move(strip.x + 2, strip.y + strip.height / 2);
  await page.mouse.move(strip.x + strip.width * 0.6, strip.y + strip.height / 2, { steps: 5 });
  const thumb = await page.waitForSelector('.storyboard .thumb:not([hidden])');
  out.storyboardThumb = await thumb.evaluate((t) => t.style.backgroundImage);
  await page.screenshot({ path: join(SHOTS, 'storyboard-hover.png') });

  // A rejected asset says why, in words, and what was measured.
  await page.goto(REELAY + '/#/asset/' + env.REJECTED_ASSET);
  const reason = await page.waitForSelector('section.variation .reason');
  out.rejectedReason = await reason.evaluate((el) => el.childNodes[1].textContent);
  out.rejectedMaster = await page.textContent('section.variation details');
  await page.screenshot({ path: join(SHOTS, 'asset-rejected.png'), fullPage: true });

  await page.goto(REELAY + '/#/');
  await page.waitForSelector('#assets tbody tr[data-asset]');
  await page.screenshot({ path: join(SHOTS, 'assets.png'), fullPage: true });
  return out;
}

const profile = mkdtempSync(join(tmpdir(), 'reelay-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
});
const problems = [];
const facts = {};
try {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  facts.dashboard = await dashboard(page);
  const published = await waitPublished(env.PUBLISHED_ASSET);
  const other = await context.newPage();
  other.on('pageerror', (e) => problems.push('page error: ' + e.message));
  facts.crossOrigin = await crossOrigin(other, published.variations[0].published);
  const subs = await context.newPage();
  subs.on('pageerror', (e) => problems.push('page error: ' + e.message));
  facts.subtitles = await subtitles(subs, published.variations[0].published);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify(facts));
