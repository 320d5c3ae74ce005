// sam2c operator panel: click on the part, see the mask, fix it with more clicks,
// accept it with a label, go to the next image. Plain JS, talks to the JSON API only.
'use strict';

const I18N = {
  en: {
    upload: 'Upload', prev: '\u25c0 Previous', next: 'Next \u25b6', prev_title: 'Previous image (P)',
    next_title: 'Next image (N)', export_coco: 'Export COCO', export_png: 'Export PNG masks',
    empty: 'Upload images to start.',
    hint: 'Left click: add a point. Right click or Shift+click: exclude. Drag: box.',
    label: 'Label', accept: 'Accept (Enter)', undo: 'Undo (Z)', clear: 'Clear (Esc)', objects: 'Objects',
    keys: 'Keyboard', key_np: 'next / previous image', key_z: 'undo the last click or box',
    key_enter: 'accept the mask with the label', key_esc: 'clear the clicks',
    key_123: 'choose one of the candidate masks',
    encoding: 'Encoding the image\u2026', queued: 'Waiting to encode\u2026', ready: 'Ready: click on a part.',
    predicting: 'Segmenting\u2026', accepted: 'Saved object #{id} ({label}).', rejected: 'Rejected object #{id}.',
    relabeled: 'Object #{id} is now \u201c{label}\u201d.', no_mask: 'No mask to accept: click on the part first.',
    no_label: 'Type a label first.', uploading: 'Uploading {i} / {n}\u2026', uploaded: 'Uploaded {n} image(s).',
    mask: 'Mask', reject: 'Reject', rename: 'Rename', error: 'Error', encode_failed: 'Encoding failed: {e}',
    as_video: 'as video', as_video_title: 'Upload the chosen files as the frames of one video',
    video_select_title: 'All images, or one video', all_images: 'All images', video_n: 'Video: {name} ({n} frames)',
    track: 'Track', new_track: 'New track (T)', propagate: 'Propagate', reset_video: 'Reset tracks',
    video_hint: 'Click the object on any frame, propagate, check the frames, then accept the track with its label.',
    key_t: 'new track (video)', propagating: 'Propagating\u2026', propagated: 'Propagated over every frame.',
    track_saved: 'Saved track {track} ({label}) on {n} frame(s).', video_created: 'Created the video {name} ({n} frames).',
    tracks_reset: 'All tracks of this video were cleared.',
    lang: '\u65e5\u672c\u8a9e',
    token_prompt: 'This server needs its access token (given to sam2c serve with --token):',
    importing: 'Splitting {name} into frames\u2026', import_queued: 'Waiting to split {name}\u2026',
  },
  ja: {
    upload: '\u30a2\u30c3\u30d7\u30ed\u30fc\u30c9', prev: '\u25c0 \u524d\u3078', next: '\u6b21\u3078 \u25b6',
    prev_title: '\u524d\u306e\u753b\u50cf (P)', next_title: '\u6b21\u306e\u753b\u50cf (N)',
    export_coco: 'COCO \u66f8\u304d\u51fa\u3057', export_png: 'PNG \u30de\u30b9\u30af\u66f8\u304d\u51fa\u3057',
    empty: '\u753b\u50cf\u3092\u30a2\u30c3\u30d7\u30ed\u30fc\u30c9\u3057\u3066\u304f\u3060\u3055\u3044\u3002',
    hint: '\u5de6\u30af\u30ea\u30c3\u30af: \u70b9\u3092\u8ffd\u52a0\u3002\u53f3\u30af\u30ea\u30c3\u30af / Shift+\u30af\u30ea\u30c3\u30af: \u9664\u5916\u3002\u30c9\u30e9\u30c3\u30b0: \u77e9\u5f62\u3002',
    label: '\u30e9\u30d9\u30eb', accept: '\u78ba\u5b9a (Enter)', undo: '\u5143\u306b\u623b\u3059 (Z)',
    clear: '\u30af\u30ea\u30a2 (Esc)', objects: '\u30aa\u30d6\u30b8\u30a7\u30af\u30c8',
    keys: '\u30ad\u30fc\u30dc\u30fc\u30c9\u64cd\u4f5c', key_np: '\u6b21 / \u524d\u306e\u753b\u50cf',
    key_z: '\u76f4\u524d\u306e\u30af\u30ea\u30c3\u30af\u3084\u77e9\u5f62\u3092\u53d6\u308a\u6d88\u3059',
    key_enter: '\u30de\u30b9\u30af\u3092\u30e9\u30d9\u30eb\u4ed8\u304d\u3067\u78ba\u5b9a',
    key_esc: '\u30af\u30ea\u30c3\u30af\u3092\u3059\u3079\u3066\u6d88\u3059',
    key_123: '\u5019\u88dc\u30de\u30b9\u30af\u3092\u9078\u3076',
    encoding: '\u753b\u50cf\u3092\u30a8\u30f3\u30b3\u30fc\u30c9\u4e2d\u2026', queued: '\u30a8\u30f3\u30b3\u30fc\u30c9\u5f85\u3061\u2026',
    ready: '\u6e96\u5099\u5b8c\u4e86: \u5bfe\u8c61\u3092\u30af\u30ea\u30c3\u30af\u3057\u3066\u304f\u3060\u3055\u3044\u3002',
    predicting: '\u30bb\u30b0\u30e1\u30f3\u30c6\u30fc\u30b7\u30e7\u30f3\u4e2d\u2026',
    accepted: '\u30aa\u30d6\u30b8\u30a7\u30af\u30c8 #{id}\uff08{label}\uff09\u3092\u4fdd\u5b58\u3057\u307e\u3057\u305f\u3002',
    rejected: '\u30aa\u30d6\u30b8\u30a7\u30af\u30c8 #{id} \u3092\u5374\u4e0b\u3057\u307e\u3057\u305f\u3002',
    relabeled: '\u30aa\u30d6\u30b8\u30a7\u30af\u30c8 #{id} \u306e\u30e9\u30d9\u30eb\u3092\u300c{label}\u300d\u306b\u3057\u307e\u3057\u305f\u3002',
    no_mask: '\u78ba\u5b9a\u3059\u308b\u30de\u30b9\u30af\u304c\u3042\u308a\u307e\u305b\u3093\u3002\u307e\u305a\u5bfe\u8c61\u3092\u30af\u30ea\u30c3\u30af\u3057\u3066\u304f\u3060\u3055\u3044\u3002',
    no_label: '\u30e9\u30d9\u30eb\u3092\u5165\u529b\u3057\u3066\u304f\u3060\u3055\u3044\u3002',
    uploading: '\u30a2\u30c3\u30d7\u30ed\u30fc\u30c9\u4e2d {i} / {n}\u2026',
    uploaded: '{n} \u679a\u30a2\u30c3\u30d7\u30ed\u30fc\u30c9\u3057\u307e\u3057\u305f\u3002',
    mask: '\u30de\u30b9\u30af', reject: '\u5374\u4e0b', rename: '\u540d\u524d\u5909\u66f4', error: '\u30a8\u30e9\u30fc',
    encode_failed: '\u30a8\u30f3\u30b3\u30fc\u30c9\u306b\u5931\u6557\u3057\u307e\u3057\u305f: {e}',
    as_video: '\u52d5\u753b\u3068\u3057\u3066', as_video_title: '\u9078\u3093\u3060\u30d5\u30a1\u30a4\u30eb\u3092 1 \u672c\u306e\u52d5\u753b\u306e\u30d5\u30ec\u30fc\u30e0\u3068\u3057\u3066\u30a2\u30c3\u30d7\u30ed\u30fc\u30c9',
    video_select_title: '\u3059\u3079\u3066\u306e\u753b\u50cf\u3001\u307e\u305f\u306f\u52d5\u753b',
    all_images: '\u3059\u3079\u3066\u306e\u753b\u50cf', video_n: '\u52d5\u753b: {name}\uff08{n} \u30d5\u30ec\u30fc\u30e0\uff09',
    track: '\u30c8\u30e9\u30c3\u30af', new_track: '\u65b0\u3057\u3044\u30c8\u30e9\u30c3\u30af (T)',
    propagate: '\u4f1d\u64ad', reset_video: '\u30c8\u30e9\u30c3\u30af\u3092\u30ea\u30bb\u30c3\u30c8',
    video_hint: '\u4efb\u610f\u306e\u30d5\u30ec\u30fc\u30e0\u3067\u5bfe\u8c61\u3092\u30af\u30ea\u30c3\u30af\u3057\u3001\u4f1d\u64ad\u3057\u3066\u5404\u30d5\u30ec\u30fc\u30e0\u3092\u78ba\u8a8d\u3057\u305f\u3089\u3001\u30e9\u30d9\u30eb\u3092\u4ed8\u3051\u3066\u30c8\u30e9\u30c3\u30af\u3092\u78ba\u5b9a\u3057\u307e\u3059\u3002',
    key_t: '\u65b0\u3057\u3044\u30c8\u30e9\u30c3\u30af\uff08\u52d5\u753b\uff09', propagating: '\u4f1d\u64ad\u4e2d\u2026',
    propagated: '\u3059\u3079\u3066\u306e\u30d5\u30ec\u30fc\u30e0\u306b\u4f1d\u64ad\u3057\u307e\u3057\u305f\u3002',
    track_saved: '\u30c8\u30e9\u30c3\u30af {track}\uff08{label}\uff09\u3092 {n} \u30d5\u30ec\u30fc\u30e0\u306b\u4fdd\u5b58\u3057\u307e\u3057\u305f\u3002',
    video_created: '\u52d5\u753b {name}\uff08{n} \u30d5\u30ec\u30fc\u30e0\uff09\u3092\u4f5c\u6210\u3057\u307e\u3057\u305f\u3002',
    tracks_reset: '\u3053\u306e\u52d5\u753b\u306e\u30c8\u30e9\u30c3\u30af\u3092\u3059\u3079\u3066\u6d88\u53bb\u3057\u307e\u3057\u305f\u3002',
    lang: 'English',
    token_prompt: '\u3053\u306e\u30b5\u30fc\u30d0\u30fc\u306e\u30a2\u30af\u30bb\u30b9\u30c8\u30fc\u30af\u30f3\u3092\u5165\u529b\u3057\u3066\u304f\u3060\u3055\u3044\uff08sam2c serve --token\uff09:',
    importing: '{name} \u3092\u30d5\u30ec\u30fc\u30e0\u306b\u5206\u5272\u4e2d\u2026',
    import_queued: '{name} \u306e\u5206\u5272\u5f85\u3061\u2026',
  },
};

const PALETTE = [[30, 144, 255], [255, 99, 71], [50, 205, 50], [255, 215, 0], [186, 85, 211], [0, 206, 209],
  [255, 140, 0], [220, 20, 60], [124, 252, 0], [65, 105, 225], [255, 105, 180], [154, 205, 50]];
const CURRENT_RGB = [0, 255, 255];
const DRAG_PX = 6; // pointer travel (screen pixels) that turns a click into a box

const $ = (id) => document.getElementById(id);
const state = {
  lang: 'en',
  allImages: [], videos: [],
  images: [], index: -1, image: null, // images: the sequence shown (all images, or a video's frames)
  video: null, // {id, name, frames, track, maxTrack, clicks: Map 'frame:track' -> history, sent: Set, masks}
  objects: [], objectLayer: null,
  history: [], // prompt states: {points: [[x, y, label]], box: [x0, y0, x1, y1] | null}
  result: null, choice: 0, maskLayer: null,
  seq: 0, drag: null, jobTimer: null,
};

// ---------- text ----------
function t(key, vars) {
  let s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
  for (const k in vars || {}) s = s.split('{' + k + '}').join(String(vars[k]));
  return s;
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  $('lang').textContent = t('lang');
  $('lang').lang = state.lang === 'en' ? 'ja' : 'en';
  renderObjects();
  renderChoices();
  renderVideoSelect();
}

function setStatus(msg, isError) {
  $('status').textContent = msg || '';
  $('status').classList.toggle('error', !!isError);
}

// ---------- API: api.js ----------

// ---------- COCO RLE ----------
// pycocotools rleFrString: the compressed counts string to run lengths.
function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1, c = 0;
    while (more) {
      c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// Paints a column-major RLE into an RGBA buffer (Uint32 view) with one colour.
function paintRle(u32, w, h, rle, colour) {
  const counts = rleCounts(rle.counts);
  let i = 0;
  for (let r = 0; r < counts.length; r++) {
    const n = counts[r];
    if (r & 1) {
      for (let j = i; j < i + n; j++) {
        const x = (j / h) | 0, y = j - x * h;
        u32[y * w + x] = colour;
      }
    }
    i += n;
  }
}

function rgba(rgb, a) { // little-endian ABGR for Uint32 views of ImageData
  return ((a << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
}

function makeLayer(w, h, paint) {
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  paint(new Uint32Array(img.data.buffer));
  ctx.putImageData(img, 0, 0);
  return c;
}

function objectColour(o) { return PALETTE[o.id % PALETTE.length]; }

// ---------- drawing ----------
function rebuildObjectLayer() {
  const im = state.image;
  if (!im) { state.objectLayer = null; return; }
  state.objectLayer = state.objects.length === 0 ? null : makeLayer(im.width, im.height, (u32) => {
    for (const o of state.objects) paintRle(u32, im.width, im.height, o.segmentation, rgba(objectColour(o), 110));
  });
}

function rebuildMaskLayer() {
  const im = state.image, r = state.result, v = state.video;
  if (v) { // every track on this frame; the current one stronger
    state.maskLayer = !im || !v.masks.length ? null : makeLayer(im.width, im.height, (u32) => {
      for (const o of v.masks) {
        const rgb = o.obj_id === v.track ? CURRENT_RGB : PALETTE[o.obj_id % PALETTE.length];
        paintRle(u32, im.width, im.height, o.segmentation, rgba(rgb, o.obj_id === v.track ? 130 : 90));
      }
    });
    return;
  }
  state.maskLayer = !im || !r ? null : makeLayer(im.width, im.height, (u32) =>
    paintRle(u32, im.width, im.height, r.masks[state.choice].segmentation, rgba(CURRENT_RGB, 120)));
}

function current() { return state.history.length ? state.history[state.history.length - 1] : { points: [], box: null }; }

function draw() {
  const cv = $('view'), im = state.image;
  if (!im) return;
  const ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (im.el.complete) ctx.drawImage(im.el, 0, 0, im.width, im.height);
  if (state.objectLayer) ctx.drawImage(state.objectLayer, 0, 0);
  if (state.maskLayer) ctx.drawImage(state.maskLayer, 0, 0);
  const scale = cv.width / Math.max(1, cv.getBoundingClientRect().width);
  const cur = current();
  ctx.lineWidth = 2 * scale;
  const box = state.drag && state.drag.moved ? dragBox(state.drag) : cur.box;
  if (box) {
    ctx.strokeStyle = '#00ffff';
    ctx.setLineDash([6 * scale, 4 * scale]);
    ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
    ctx.setLineDash([]);
  }
  for (const [x, y, l] of cur.points) {
    ctx.beginPath();
    ctx.arc(x, y, 6 * scale, 0, 2 * Math.PI);
    ctx.fillStyle = l ? '#22c55e' : '#ef4444';
    ctx.fill();
    ctx.strokeStyle = '#ffffff';
    ctx.stroke();
  }
}

function renderChoices() {
  const box = $('choices');
  box.textContent = '';
  const r = state.result;
  if (!r || r.masks.length < 2) return;
  r.masks.forEach((m, k) => {
    const b = document.createElement('button');
    b.textContent = t('mask') + ' ' + (k + 1) + ' (' + m.iou_pred.toFixed(2) + ')';
    b.classList.toggle('selected', k === state.choice);
    b.addEventListener('click', () => choose(k));
    box.appendChild(b);
  });
}

function choose(k) {
  if (!state.result || k < 0 || k >= state.result.masks.length) return;
  state.choice = k;
  rebuildMaskLayer();
  renderChoices();
  draw();
}

function renderObjects() {
  const ul = $('objects');
  ul.textContent = '';
  $('count').textContent = state.objects.length ? '(' + state.objects.length + ')' : '';
  for (const o of state.objects) {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    const c = objectColour(o);
    sw.style.background = 'rgb(' + c.join(',') + ')';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = o.label;
    name.title = t('rename');
    name.addEventListener('click', () => startRename(li, o));
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = '#' + o.id;
    const rej = document.createElement('button');
    rej.textContent = '\u2715';
    rej.title = t('reject');
    rej.addEventListener('click', () => rejectObject(o));
    li.append(sw, name, id, rej);
    ul.appendChild(li);
  }
  const labels = $('labels');
  const seen = new Set(state.objects.map((o) => o.label));
  labels.textContent = '';
  for (const l of seen) { const opt = document.createElement('option'); opt.value = l; labels.appendChild(opt); }
}

// ---------- objects ----------
function startRename(li, o) {
  const input = document.createElement('input');
  input.value = o.label;
  input.maxLength = 200;
  const name = li.querySelector('.name');
  li.replaceChild(input, name);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const label = input.value.trim();
    if (save && label && label !== o.label) {
      try {
        const r = await api('PATCH', '/api/objects/' + o.id, { label });
        o.label = r.label;
        setStatus(t('relabeled', { id: o.id, label: o.label }));
      } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
    }
    renderObjects();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') { e.preventDefault(); finish(false); }
    e.stopPropagation();
  });
  input.addEventListener('blur', () => finish(true));
}

async function rejectObject(o) {
  try {
    await api('DELETE', '/api/objects/' + o.id);
    state.objects = state.objects.filter((x) => x.id !== o.id);
    rebuildObjectLayer();
    renderObjects();
    draw();
    setStatus(t('rejected', { id: o.id }));
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

async function acceptMask() {
  if (state.video) { acceptTrack(); return; }
  const im = state.image, r = state.result;
  if (!im || !r) { setStatus(t('no_mask'), true); return; }
  const label = $('label').value.trim();
  if (!label) { setStatus(t('no_label'), true); $('label').focus(); return; }
  const m = r.masks[state.choice], cur = current();
  const prompt = {
    points: cur.points.map((p) => [p[0], p[1]]), labels: cur.points.map((p) => p[2]),
    box: cur.box, multimask: r.multimask, mask_index: state.choice,
  };
  try {
    const o = await api('POST', '/api/images/' + im.id + '/objects',
      { label, segmentation: m.segmentation, iou_pred: m.iou_pred, prompt });
    state.objects.push(o);
    state.history = [];
    state.result = null;
    state.maskLayer = null;
    rebuildObjectLayer();
    renderObjects();
    renderChoices();
    draw();
    setStatus(t('accepted', { id: o.id, label: o.label }));
    const entry = state.images.find((x) => x.id === im.id);
    if (entry) entry.objects = state.objects.length;
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

// ---------- prompts ----------
function pushPrompt(next) {
  state.history.push(next);
  if (state.history.length > 200) state.history.shift();
  predict();
}

async function predict() {
  if (state.video) { predictVideo(); return; }
  const im = state.image, cur = current(), seq = ++state.seq;
  if (!im) return;
  if (!cur.points.length && !cur.box) {
    state.result = null; state.maskLayer = null; renderChoices(); draw(); return;
  }
  draw();
  const body = { points: cur.points.map((p) => [p[0], p[1]]), labels: cur.points.map((p) => p[2]) };
  if (cur.box) body.box = cur.box;
  body.multimask = cur.points.length === 1 && !cur.box;
  setStatus(t('predicting'));
  $('view').classList.add('busy');
  try {
    const r = await api('POST', '/api/images/' + im.id + '/predict', body);
    if (seq !== state.seq || state.image !== im) return; // a newer click won
    state.result = r;
    state.choice = r.best;
    rebuildMaskLayer();
    renderChoices();
    draw();
    setStatus(t('ready'));
  } catch (e) {
    if (seq === state.seq) setStatus(t('error') + ': ' + e.message, true);
  } finally {
    if (seq === state.seq) $('view').classList.remove('busy');
  }
}

function undo() {
  if (!state.history.length) return;
  state.history.pop();
  predict();
}

function clearPrompt() {
  if (state.video) { state.history.length = 0; predictVideo(); return; }
  state.history = [];
  state.result = null;
  state.maskLayer = null;
  state.seq++;
  renderChoices();
  draw();
}

function toImage(e) {
  const cv = $('view'), r = cv.getBoundingClientRect();
  const x = ((e.clientX - r.left) * cv.width) / r.width, y = ((e.clientY - r.top) * cv.height) / r.height;
  return [Math.min(Math.max(x, 0), cv.width), Math.min(Math.max(y, 0), cv.height)];
}

function dragBox(d) {
  return [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)];
}

function onPointerDown(e) {
  if (!state.image || (e.button !== 0 && e.button !== 2)) return;
  e.preventDefault();
  const [x, y] = toImage(e);
  state.drag = { x0: x, y0: y, x1: x, y1: y, sx: e.clientX, sy: e.clientY, moved: false,
    negative: e.button === 2 || e.shiftKey };
  $('view').setPointerCapture(e.pointerId);
}

function onPointerMove(e) {
  const d = state.drag;
  if (!d) return;
  [d.x1, d.y1] = toImage(e);
  if (Math.abs(e.clientX - d.sx) + Math.abs(e.clientY - d.sy) > DRAG_PX && !d.negative) d.moved = true;
  if (d.moved) draw();
}

function onPointerUp(e) {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  const cur = current();
  if (d.moved) {
    const box = dragBox(d).map((v) => Math.round(v * 10) / 10);
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) { draw(); return; }
    pushPrompt({ points: cur.points.slice(), box });
  } else {
    const p = [Math.round(d.x0 * 10) / 10, Math.round(d.y0 * 10) / 10, d.negative ? 0 : 1];
    pushPrompt({ points: cur.points.concat([p]), box: cur.box });
  }
  e.preventDefault();
}

// ---------- images ----------
function showProgress(frac, text) {
  const p = $('progress');
  if (frac === null) { p.hidden = true; return; }
  p.hidden = false;
  $('progress-bar').style.width = Math.round(100 * frac) + '%';
  $('progress-text').textContent = text;
}

function pollJob(jobId, im) {
  clearTimeout(state.jobTimer);
  const tick = async () => {
    if (state.image !== im) return;
    try {
      const j = await api('GET', '/api/jobs/' + jobId);
      if (state.image !== im) return;
      if (j.state === 'done') { showProgress(null); if (!state.result) setStatus(t('ready')); prefetchNext(); return; }
      if (j.state === 'failed') { showProgress(null); setStatus(t('encode_failed', { e: j.error }), true); return; }
      showProgress(j.progress, j.state === 'queued' ? t('queued') : t('encoding') + ' ' + Math.round(100 * j.progress) + '%');
      state.jobTimer = setTimeout(tick, 250);
    } catch (e) { showProgress(null); setStatus(t('error') + ': ' + e.message, true); }
  };
  tick();
}

function prefetchNext() { // encode the next image in the background while this one is annotated
  const n = state.images[state.index + 1];
  if (n && !n.encoded) api('POST', '/api/images/' + n.id + '/encode').catch(() => {});
}

async function openImage(index) {
  if (index < 0 || index >= state.images.length) return;
  const meta = state.images[index];
  state.index = index;
  if (!state.video) { localStorage.setItem('sam2c.image', String(meta.id)); clearPrompt(); }
  else {
    state.result = null; state.maskLayer = null; state.seq++; state.video.masks = [];
    $('frame').value = String(index);
    $('frame-label').textContent = (index + 1) + ' / ' + state.images.length;
    bindHistory();
  }
  state.objects = [];
  const el = new Image();
  const im = { id: meta.id, width: meta.width, height: meta.height, el };
  state.image = im;
  state.objectLayer = null;
  const cv = $('view');
  cv.width = meta.width;
  cv.height = meta.height;
  cv.hidden = false;
  $('empty').hidden = true;
  $('position').textContent = (index + 1) + ' / ' + state.images.length;
  $('image-name').textContent = meta.name;
  $('image-name').title = meta.name;
  el.addEventListener('load', () => { URL.revokeObjectURL(el.src); if (state.image === im) draw(); });
  try {
    const url = await blobUrl('/api/images/' + meta.id);
    if (state.image !== im) { URL.revokeObjectURL(url); return; }
    el.src = url;
    if (state.video) await refreshVideoMasks();
    else {
      const job = await api('POST', '/api/images/' + meta.id + '/encode');
      if (state.image !== im) return;
      if (job.state === 'done') { showProgress(null); setStatus(t('ready')); prefetchNext(); } else { setStatus(t('encoding')); pollJob(job.id, im); }
    }
    const r = await api('GET', '/api/images/' + meta.id + '/objects');
    if (state.image !== im) return;
    state.objects = r.objects;
    rebuildObjectLayer();
    renderObjects();
    draw();
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

async function loadImages(selectId) {
  const r = await api('GET', '/api/images');
  state.allImages = r.images;
  if (state.video) return;
  state.images = r.images;
  $('position').textContent = (state.index + 1) + ' / ' + state.images.length;
  if (!state.images.length) return;
  let k = state.images.findIndex((x) => x.id === selectId);
  if (k < 0) k = 0;
  await openImage(k);
}

const VIDEO_FILE = /\.(mp4|m4v|mov|mkv|webm|avi|mpg|mpeg|ogv|3gp)$/i;
function isVideoFile(f) { return (f.type || '').startsWith('video/') || VIDEO_FILE.test(f.name); }

// A video file: the server splits it into frames (a job); then it opens as a video.
async function uploadVideoFile(f) {
  setStatus(t('uploading', { i: 1, n: 1 }));
  try {
    const job = await api('POST', '/api/videos/upload?name=' + encodeURIComponent(f.name), f,
      { 'Content-Type': f.type || 'application/octet-stream' });
    let j = job;
    while (j.state !== 'done' && j.state !== 'failed') {
      showProgress(j.progress, t(j.state === 'queued' ? 'import_queued' : 'importing', { name: f.name }) +
        ' ' + Math.round(100 * j.progress) + '%');
      await new Promise((r) => setTimeout(r, 300));
      j = await api('GET', '/api/jobs/' + job.id);
    }
    showProgress(null);
    if (j.state === 'failed') { setStatus(f.name + ': ' + j.error, true); return; }
    await loadImages();
    await loadVideos();
    await selectVideo(j.video_id);
    const v = state.videos.find((x) => x.id === j.video_id);
    if (v) setStatus(t('video_created', { name: v.name, n: v.n_frames }));
  } catch (e) { showProgress(null); setStatus(f.name + ': ' + e.message, true); }
}

async function upload(files) {
  const videos = files.filter(isVideoFile);
  files = files.filter((f) => !isVideoFile(f));
  for (const f of videos) await uploadVideoFile(f);
  if (!files.length) return;
  const asVideo = $('as-video').checked;
  if (asVideo) files.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  let first = null, n = 0;
  const ids = [];
  for (const f of files) {
    setStatus(t('uploading', { i: n + 1, n: files.length }));
    try {
      const r = await api('POST', '/api/images?name=' + encodeURIComponent(f.name), f,
        { 'Content-Type': f.type || 'application/octet-stream' });
      if (first === null) first = r.id;
      ids.push(r.id);
      n++;
    } catch (e) { setStatus(f.name + ': ' + e.message, true); return; }
  }
  setStatus(t('uploaded', { n }));
  if (asVideo && ids.length) {
    try {
      const name = files[0].name.replace(/\.[^.]*$/, '');
      const v = await api('POST', '/api/videos', { name, frames: ids });
      await loadImages(first);
      await loadVideos();
      await selectVideo(v.id);
      setStatus(t('video_created', { name: v.name, n: v.n_frames }));
    } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
    return;
  }
  if (first !== null) { state.video = null; await loadImages(first); renderVideoSelect(); }
}

// ---------- video ----------
async function loadVideos() {
  const r = await api('GET', '/api/videos');
  state.videos = r.videos;
  renderVideoSelect();
}

function renderVideoSelect() {
  const sel = $('video-select');
  sel.textContent = '';
  const all = document.createElement('option');
  all.value = '';
  all.textContent = t('all_images');
  sel.appendChild(all);
  for (const v of state.videos) {
    const o = document.createElement('option');
    o.value = String(v.id);
    o.textContent = t('video_n', { name: v.name, n: v.n_frames });
    sel.appendChild(o);
  }
  sel.value = state.video ? String(state.video.id) : '';
}

async function selectVideo(id) {
  clearTimeout(state.jobTimer);
  showProgress(null);
  if (!id) {
    state.video = null;
    $('timeline').hidden = true;
    $('video-tools').hidden = true;
    state.history = [];
    renderVideoSelect();
    await loadImages(Number(localStorage.getItem('sam2c.image')));
    return;
  }
  const v = await api('GET', '/api/videos/' + id);
  const byId = new Map(state.allImages.map((m) => [m.id, m]));
  state.video = { id: v.id, name: v.name, frames: v.frames, track: 1, maxTrack: 1, clicks: new Map(), sent: new Set(), masks: [] };
  state.images = v.frames.map((f) => byId.get(f)).filter(Boolean);
  $('timeline').hidden = false;
  $('video-tools').hidden = false;
  $('frame').max = String(Math.max(0, state.images.length - 1));
  $('track').textContent = '1';
  renderVideoSelect();
  await openImage(0);
}

function bindHistory() { // the clicks of (frame, track) live in the video's map
  const v = state.video, key = state.index + ':' + v.track;
  if (!v.clicks.has(key)) v.clicks.set(key, []);
  state.history = v.clicks.get(key);
}

function showFrameMasks(objects) {
  const v = state.video;
  v.masks = objects;
  for (const o of objects) v.maxTrack = Math.max(v.maxTrack, o.obj_id);
  rebuildMaskLayer();
  draw();
}

async function refreshVideoMasks() {
  const v = state.video, frame = state.index;
  const r = await api('GET', '/api/videos/' + v.id + '/masks?frame=' + frame);
  if (state.video === v && state.index === frame) showFrameMasks(r.objects);
}

async function predictVideo() {
  const v = state.video, frame = state.index, cur = current(), seq = ++state.seq, key = frame + ':' + v.track;
  let body;
  if (cur.points.length || cur.box) {
    body = { frame, obj_id: v.track, points: cur.points.map((p) => [p[0], p[1]]), labels: cur.points.map((p) => p[2]) };
    if (cur.box) body.box = cur.box;
  } else if (v.sent.has(key)) body = { frame, obj_id: v.track, clear: true };
  else { draw(); return; }
  draw();
  setStatus(t('predicting'));
  try {
    const r = await api('POST', '/api/videos/' + v.id + '/prompt', body);
    if (body.clear) v.sent.delete(key); else v.sent.add(key);
    if (seq !== state.seq || state.video !== v || state.index !== frame) return;
    showFrameMasks(r.objects);
    setStatus(t('ready'));
  } catch (e) { if (seq === state.seq) setStatus(t('error') + ': ' + e.message, true); }
}

function newTrack() {
  const v = state.video;
  if (!v) return;
  v.track = v.maxTrack + 1;
  v.maxTrack = v.track;
  $('track').textContent = String(v.track);
  bindHistory();
  rebuildMaskLayer();
  draw();
}

async function propagate() {
  const v = state.video;
  if (!v) return;
  try {
    const job = await api('POST', '/api/videos/' + v.id + '/propagate');
    const tick = async () => {
      if (state.video !== v) return;
      try {
        const j = await api('GET', '/api/jobs/' + job.id);
        if (j.state === 'done') { showProgress(null); setStatus(t('propagated')); refreshVideoMasks(); return; }
        if (j.state === 'failed') { showProgress(null); setStatus(t('error') + ': ' + j.error, true); return; }
        showProgress(j.progress, t('propagating') + ' ' + Math.round(100 * j.progress) + '%');
        state.jobTimer = setTimeout(tick, 300);
      } catch (e) { showProgress(null); setStatus(t('error') + ': ' + e.message, true); }
    };
    tick();
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

async function acceptTrack() {
  const v = state.video, label = $('label').value.trim();
  if (!label) { setStatus(t('no_label'), true); $('label').focus(); return; }
  try {
    const r = await api('POST', '/api/videos/' + v.id + '/accept', { obj_id: v.track, label });
    setStatus(t('track_saved', { track: v.track, label, n: r.objects.length }));
    const o = await api('GET', '/api/images/' + state.image.id + '/objects');
    state.objects = o.objects;
    rebuildObjectLayer();
    renderObjects();
    draw();
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

async function resetVideo() {
  const v = state.video;
  if (!v) return;
  try {
    await api('POST', '/api/videos/' + v.id + '/reset');
    v.clicks.clear();
    v.sent.clear();
    bindHistory();
    showFrameMasks([]);
    setStatus(t('tracks_reset'));
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

// ---------- keys and wiring ----------
function onKey(e) {
  const tag = e.target && e.target.tagName;
  if (tag === 'INPUT' || tag === 'TEXTAREA') {
    if (e.target.id === 'label' && e.key === 'Enter') { e.preventDefault(); acceptMask(); }
    if (e.target.id === 'label' && e.key === 'Escape') e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key.toLowerCase();
  if (k === 'n') openImage(state.index + 1);
  else if (k === 'p') openImage(state.index - 1);
  else if (k === 'z') undo();
  else if (e.key === 'Enter') acceptMask();
  else if (e.key === 'Escape') clearPrompt();
  else if (k >= '1' && k <= '3') choose(Number(k) - 1);
  else if (k === 't') newTrack();
  else return;
  e.preventDefault();
}

function init() {
  state.lang = localStorage.getItem('sam2c.lang') === 'ja' ? 'ja' : 'en';
  const cv = $('view');
  cv.addEventListener('pointerdown', onPointerDown);
  cv.addEventListener('pointermove', onPointerMove);
  cv.addEventListener('pointerup', onPointerUp);
  cv.addEventListener('contextmenu', (e) => e.preventDefault());
  window.addEventListener('keydown', onKey);
  window.addEventListener('resize', draw);
  $('prev').addEventListener('click', () => openImage(state.index - 1));
  $('next').addEventListener('click', () => openImage(state.index + 1));
  $('accept').addEventListener('click', acceptMask);
  $('undo').addEventListener('click', undo);
  $('clear').addEventListener('click', clearPrompt);
  $('export-coco').addEventListener('click', (e) => { e.preventDefault(); download('/api/export?format=coco', 'instances.json'); });
  $('export-png').addEventListener('click', (e) => { e.preventDefault(); download('/api/export?format=png&archive=tar', 'masks.tar'); });
  $('upload').addEventListener('change', (e) => { upload(Array.from(e.target.files)); e.target.value = ''; });
  $('video-select').addEventListener('change', (e) => {
    selectVideo(Number(e.target.value) || 0).catch((err) => setStatus(t('error') + ': ' + err.message, true));
  });
  let scrub = null;
  $('frame').addEventListener('input', (e) => {
    clearTimeout(scrub);
    scrub = setTimeout(() => openImage(Number(e.target.value)), 60);
  });
  $('new-track').addEventListener('click', newTrack);
  $('propagate').addEventListener('click', propagate);
  $('reset-video').addEventListener('click', resetVideo);
  $('lang').addEventListener('click', () => {
    state.lang = state.lang === 'en' ? 'ja' : 'en';
    localStorage.setItem('sam2c.lang', state.lang);
    applyLang();
  });
  applyLang();
  loadImages(Number(localStorage.getItem('sam2c.image')))
    .then(loadVideos)
    .catch((e) => setStatus(t('error') + ': ' + e.message, true));
}

init();
