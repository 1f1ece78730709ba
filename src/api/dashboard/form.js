// reelay dashboard: the form that requests a new asset (POST /v1/assets).
// The API is the one judge of the fields: the form sends what was typed and
// shows each refused field's rule next to the input whose `data-path` names it.
'use strict';

function renderNewAssetForm(options, onCreated, api, SignedOut, showSignIn) {
  const frag = document.getElementById('new-asset-form').content.cloneNode(true);
  const form = frag.querySelector('#asset-form');
  const fill = (name, values, selected) => {
    const sel = form.elements[name];
    sel.replaceChildren(...values.map(([value, text]) => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      if (value === selected) o.selected = true;
      return o;
    }));
  };
  fill('profile', options.profiles.map((p) => [p.name, p.description ? `${p.name}: ${p.description}` : p.name]), 'default');
  fill('size', options.model.sizes.map((s) => [s, s]), options.model.sizes[0]);
  fill('outputFormat', options.model.output_formats.map((f) => [f, f]), 'MP4');
  form.elements.duration.min = options.model.min_duration;
  form.elements.duration.max = options.model.max_duration;
  const action = new ActionKey();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const body = requestBody(form);
      const created = await api('POST', '/v1/assets', body, action.for(body));
      action.done();
      onCreated(created.id);
    } catch (e) {
      if (e instanceof SignedOut) { showSignIn('Your key is no longer accepted. Sign in again.'); return; }
      const fields = (e.body && e.body.error && e.body.error.fields) || [];
      showErrors(form, fields.length ? fields : [{ path: '$', rule: e.message }]);
    } finally {
      button.disabled = false;
    }
  });
  return frag;
}

// The request as the API takes it; empty optional inputs are left out, and
// numbers that are not numbers are sent as typed, so the API names them.
function requestBody(form) {
  const el = form.elements;
  const num = (v) => (v.trim() === '' ? undefined : (Number.isFinite(Number(v)) ? Number(v) : v));
  const [width, height] = el.size.value.split('x').map(Number);
  const klingai = { sound: el.sound.checked };
  const shots = el.multiPrompt.value.split('\n').map((l) => l.trim()).filter(Boolean);
  if (shots.length) {
    klingai.multiPrompt = shots.map((line) => {
      const bar = line.indexOf('|');
      return bar < 0 ? { prompt: line } : { duration: num(line.slice(0, bar)), prompt: line.slice(bar + 1).trim() };
    });
  }
  const generation = {
    positivePrompt: el.positivePrompt.value,
    width, height,
    duration: num(el.duration.value),
    numberResults: num(el.numberResults.value),
    outputFormat: el.outputFormat.value,
    outputQuality: num(el.outputQuality.value),
    ttl: num(el.ttl.value),
    providerSettings: { klingai },
  };
  const body = { campaign: el.campaign.value.trim(), profile: el.profile.value, generation };
  if (el.callbackUrl.value.trim()) body.callbackUrl = el.callbackUrl.value.trim();
  return JSON.parse(JSON.stringify(body)); // drops the undefined ones
}

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error.from-api')) p.remove();
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  const list = form.querySelector('#form-errors');
  list.replaceChildren();
  list.hidden = true;
}

// The field whose data-path is the longest prefix of the error's path.
function fieldFor(form, path) {
  let best = null;
  let bestLen = -1;
  for (const f of form.querySelectorAll('.field[data-path]')) {
    for (const p of f.dataset.path.split(' ')) {
      const hit = path === p || path.startsWith(p + '.') || path.startsWith(p + '[');
      if (hit && p.length > bestLen) { best = f; bestLen = p.length; }
    }
  }
  return best;
}

function showErrors(form, fields) {
  const list = form.querySelector('#form-errors');
  for (const f of fields) {
    const field = fieldFor(form, f.path);
    const input = field && field.querySelector('input, select, textarea');
    if (input) {
      const p = document.createElement('p');
      p.className = 'field-error from-api';
      p.dataset.errorFor = f.path;
      p.textContent = `${f.path}: ${f.rule}`;
      field.append(p);
      input.setAttribute('aria-invalid', 'true');
    } else {
      const li = document.createElement('li');
      li.dataset.errorFor = f.path;
      li.textContent = `${f.path}: ${f.rule}`;
      list.append(li);
      list.hidden = false;
    }
  }
  const firstBad = form.querySelector('[aria-invalid="true"]');
  if (firstBad) firstBad.focus();
}
