// The sam2c panel in Debian's chromium: give the token once, upload truck.jpg, click on
// the truck, see the mask drawn (screenshot pixels blended with the mask colour), add a
// negative (right) click, accept with a label, export COCO and find the object in it.
// Run by tests/e2e/run.sh, which starts the server and sets:
//   SAM2C_URL, SAM2C_TOKEN, E2E_IMAGE, E2E_ARTIFACTS (screenshots), E2E_PROFILE.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const URL = process.env.SAM2C_URL;
const TOKEN = process.env.SAM2C_TOKEN;
const IMAGE = process.env.E2E_IMAGE;
const ART = process.env.E2E_ARTIFACTS;
const PROFILE = process.env.E2E_PROFILE;
const MASK_RGB = [0, 255, 255]; // app.js CURRENT_RGB
const MASK_ALPHA = 120 / 255;   // app.js rgba(CURRENT_RGB, 120) for the current mask
const TIMEOUT = 120000;

function fail(msg) { throw new Error(msg); }

// Decodes two PNG screenshots in the page and counts the pixels where `after` is `before`
// blended with the mask colour (each channel within 8 of the blend, and visibly changed).
async function maskPixels(page, before, after) {
  return page.evaluate(async ([a, b, rgb, alpha]) => {
    const load = async (b64) => {
      const img = new Image();
      img.src = 'data:image/png;base64,' + b64;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width; c.height = img.height;
      const x = c.getContext('2d');
      x.drawImage(img, 0, 0);
      return x.getImageData(0, 0, c.width, c.height);
    };
    const p = await load(a), q = await load(b);
    if (p.width !== q.width || p.height !== q.height) return { n: -1, total: 0 };
    let n = 0;
    for (let i = 0; i < p.data.length; i += 4) {
      let ok = true, moved = 0;
      for (let k = 0; k < 3; k++) {
        const want = p.data[i + k] * (1 - alpha) + rgb[k] * alpha;
        if (Math.abs(q.data[i + k] - want) > 8) ok = false;
        moved += Math.abs(q.data[i + k] - p.data[i + k]);
      }
      if (ok && moved > 24) n++;
    }
    return { n, total: p.width * p.height };
  }, [before.toString('base64'), after.toString('base64'), MASK_RGB, MASK_ALPHA]);
}

// Clicks the canvas at image coordinates (x, y).
async function clickImage(page, x, y, button) {
  const box = await page.locator('#view').boundingBox();
  const size = await page.evaluate(() => [document.getElementById('view').width, document.getElementById('view').height]);
  await page.mouse.click(box.x + (x * box.width) / size[0], box.y + (y * box.height) / size[1], { button });
}

// Clicks and waits for the prediction it triggers; returns the request body.
async function predictClick(page, x, y, button) {
  const resp = page.waitForResponse((r) => r.url().includes('/predict') && r.request().method() === 'POST',
    { timeout: TIMEOUT });
  await clickImage(page, x, y, button);
  const r = await resp;
  if (r.status() !== 200) fail('predict answered ' + r.status() + ': ' + (await r.text()));
  await page.waitForFunction(() => !document.getElementById('view').classList.contains('busy'));
  await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res))));
  return r.request().postDataJSON();
}

async function main() {
  if (!URL || !TOKEN || !IMAGE || !ART || !PROFILE) fail('run me through tests/e2e/run.sh');
  fs.mkdirSync(ART, { recursive: true });
  const ctx = await chromium.launchPersistentContext(PROFILE, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(TIMEOUT);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let prompts = 0;
    page.on('dialog', async (d) => {
      if (d.type() === 'prompt') { prompts++; await d.accept(TOKEN); } else await d.dismiss();
    });
    // every request leaves the machine for the server only
    await page.route('**/*', (route) => (route.request().url().startsWith(URL) || route.request().url().startsWith('blob:')
      || route.request().url().startsWith('data:') ? route.continue() : route.abort()));

    await page.goto(URL);
    await page.waitForFunction(() => document.getElementById('status').textContent !== '' ||
      document.getElementById('empty').hidden === false);
    // upload: the first API call gets 401, the panel asks for the token once
    await page.setInputFiles('#upload', IMAGE);
    await page.waitForFunction(() => /^Ready/.test(document.getElementById('status').textContent));
    if (prompts !== 1) fail('the token was asked ' + prompts + ' times (expected once)');
    const stored = await page.evaluate(() => sessionStorage.getItem('sam2c.token'));
    if (stored !== TOKEN) fail('the token is not kept in sessionStorage');
    const name = await page.textContent('#image-name');
    if (name !== path.basename(IMAGE)) fail('image name shown: ' + name);
    if (await page.locator('#timeline').isVisible()) fail('the video timeline shows for a plain image');
    const canvas = page.locator('#view');
    const shot0 = await canvas.screenshot({ path: path.join(ART, '1-image.png') });

    // positive click on the truck: a mask in the mask colour appears
    const b1 = await predictClick(page, 500, 375, 'left');
    if (JSON.stringify(b1.labels) !== '[1]') fail('first click sent labels ' + JSON.stringify(b1.labels));
    const shot1 = await canvas.screenshot({ path: path.join(ART, '2-mask.png') });
    const m1 = await maskPixels(page, shot0, shot1);
    console.log(`e2e: mask after the click covers ${m1.n} of ${m1.total} screenshot pixels`);
    if (m1.n < 0.01 * m1.total) fail('no mask drawn after the click');

    // negative (right) click elsewhere: a second prediction with labels [1, 0]
    const b2 = await predictClick(page, 1600, 1100, 'right');
    if (JSON.stringify(b2.labels) !== '[1,0]') fail('right click sent labels ' + JSON.stringify(b2.labels));
    const shot2 = await canvas.screenshot({ path: path.join(ART, '3-negative.png') });
    const m2 = await maskPixels(page, shot0, shot2);
    console.log(`e2e: mask after the negative click covers ${m2.n} pixels`);
    if (m2.n < 0.01 * m2.total) fail('no mask drawn after the negative click');

    // accept with a label
    await page.fill('#label', 'truck');
    const created = page.waitForResponse((r) => /\/api\/images\/\d+\/objects$/.test(r.url()) &&
      r.request().method() === 'POST');
    await page.click('#accept');
    const cr = await created;
    if (cr.status() !== 201) fail('accept answered ' + cr.status() + ': ' + (await cr.text()));
    const obj = await cr.json();
    await page.waitForFunction(() => /^Saved object/.test(document.getElementById('status').textContent));
    const items = await page.locator('#objects li').count();
    if (items !== 1) fail('objects listed: ' + items);
    await canvas.screenshot({ path: path.join(ART, '4-accepted.png') });

    // export COCO through the panel's button (a download of the JSON)
    const dl = page.waitForEvent('download');
    await page.click('#export-coco');
    const d = await dl;
    const file = path.join(ART, 'instances.json');
    await d.saveAs(file);
    const coco = JSON.parse(fs.readFileSync(file, 'utf8'));
    const anns = coco.annotations || [];
    const cat = (coco.categories || []).find((c) => c.name === 'truck');
    if (anns.length !== 1 || !cat) fail('COCO export: ' + anns.length + ' annotations, truck category ' + !!cat);
    const a = anns[0];
    if (a.category_id !== cat.id || !(a.area > 0) || !a.segmentation || !a.segmentation.counts) fail('COCO annotation: ' + JSON.stringify(a).slice(0, 300));
    if (a.area !== obj.area) fail(`COCO area ${a.area} != accepted ${obj.area}`);
    const img = (coco.images || []).find((x) => x.id === a.image_id);
    if (!img || img.file_name !== path.basename(IMAGE)) fail('COCO image: ' + JSON.stringify(img));
    await page.screenshot({ path: path.join(ART, '5-panel.png'), fullPage: true });
    if (errors.length) fail('page errors: ' + errors.join('; '));
    console.log(`e2e: PASS (object ${obj.id}, area ${a.area}, screenshots in ${ART})`);
  } finally {
    await ctx.close();
  }
}

main().catch((e) => { console.error('e2e: FAIL: ' + (e && e.stack ? e.stack : e)); process.exit(1); });
