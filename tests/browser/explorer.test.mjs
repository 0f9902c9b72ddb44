// explorer.test.mjs: the page of `latentlab serve` in a headless Chromium, driven by puppeteer-core.
//   node tests/browser/explorer.test.mjs OUT_DIR NAME=URL [NAME=URL ...]
// scripts/browser-test.sh trains the runs, starts the servers and calls this. For each server (a
// VAE run, a GAN run) it works every control as a user would, with the mouse and keyboard, and
// checks that each one changes what it should: a slider (and that the decoded image follows within
// 100 ms a round trip), the map (VAE: a click decodes that point), a seeded batch, an interpolation
// (lerp, then slerp), an arithmetic, a traversal and the outlier list (VAE). Any console error,
// uncaught exception, failed request or HTTP error status fails the test. Screenshots go to
// OUT_DIR/explorer-NAME.png (the whole page) and explorer-NAME-top.png (its first 1400x1000).
// Exits 1 on the first failed check, naming it.
import fs from "node:fs";
import path from "node:path";
import puppeteer from "puppeteer-core";

const [outDir, ...targets] = process.argv.slice(2);
if (!outDir || targets.length === 0 || targets.some((t) => !t.includes("="))) {
  console.error("usage: node explorer.test.mjs OUT_DIR NAME=URL [NAME=URL ...]");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const kMaxMedianMs = 100;  // the bound for one interaction, measured as the page sees it

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}

// Waits until the page has no API request in flight (app.js counts them in body[data-busy]).
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.busy === "0", { timeout: 20000 });
}

async function srcOf(page, selector) {
  return page.$eval(selector, (img) => img.getAttribute("src") || "");
}

async function srcsOf(page, selector) {
  return page.$$eval(selector, (imgs) => imgs.map((i) => i.getAttribute("src")));
}

// Clicks `button` and waits until the API calls it started are answered.
async function press(page, selector) {
  await page.click(selector);
  await new Promise((r) => setTimeout(r, 30));
  await settled(page);
}

async function testPage(browser, name, url) {
  console.log(`${name}: ${url}`);
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warn") problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  // Nothing may come from anywhere but the server itself.
  const origin = new URL(url).origin;
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith("data:")) problems.push(`request to another origin: ${u}`);
  });

  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => document.body.dataset.ready === "1", { timeout: 30000 });
  await settled(page);
  const info = await page.evaluate(async () => (await fetch("/api/info")).json());
  check(info.latent_dim > 0, `the page loaded a ${info.kind} run (${info.model}, latent dim ${info.latent_dim})`);
  const sliders = await page.$$("#sliders input[type=range]");
  check(sliders.length === info.latent_dim, `one slider per latent unit (${sliders.length})`);
  const first = await srcOf(page, "#decoded");
  check(first.startsWith("data:image/png;base64,"), "the zero code is decoded");

  // A slider: a click on the first (highest-KL) one at 85% of its track, then keyboard steps; the
  // image must change, and each round trip is timed by the page (body[data-last-decode-ms]).
  const box = await sliders[0].boundingBox();
  await page.mouse.click(box.x + box.width * 0.85, box.y + box.height / 2);
  await page.waitForFunction((s) => document.getElementById("decoded").getAttribute("src") !== s, { timeout: 10000 }, first);
  await settled(page);
  check((await srcOf(page, "#decoded")) !== first, "moving a slider changes the decoded image");
  const times = [];
  await sliders[1 % sliders.length].focus();
  for (let i = 0; i < 20; ++i) {
    const before = await srcOf(page, "#decoded");
    await page.keyboard.press(i < 10 ? "ArrowRight" : "ArrowLeft");
    await page.keyboard.press(i < 10 ? "PageUp" : "PageDown");
    await settled(page);
    const after = await srcOf(page, "#decoded");
    if (after !== before) times.push(Number(await page.$eval("body", (b) => b.dataset.lastDecodeMs)));
  }
  times.sort((a, b) => a - b);
  check(times.length >= 10, `keyboard steps on a slider re-decode (${times.length} of 20 changed the image)`);
  const median = times[Math.floor(times.length / 2)];
  console.log(`  slider round trips: median ${median} ms, max ${times[times.length - 1]} ms over ${times.length}`);
  check(median < kMaxMedianMs, `a slider's decode round trip takes under ${kMaxMedianMs} ms (median ${median} ms)`);

  // A seeded batch; a click on one of its images loads that code.
  await page.$eval("#batch-n", (e) => { e.value = "12"; });
  await press(page, "#batch-run");
  const batch = await page.$$("#batch-grid img");
  check(batch.length === 12, "a seeded batch of 12 images");
  const beforeBatch = await srcOf(page, "#decoded");
  await batch[5].click();
  await settled(page);
  check((await srcOf(page, "#decoded")) === (await srcsOf(page, "#batch-grid img"))[5], "clicking a batch image loads its code");
  check(beforeBatch !== (await srcOf(page, "#decoded")), "... and changes the decoded image");

  if (info.map) {
    // The latent map: a click decodes that point and sets the sliders to its code.
    const canvas = await page.$("#map");
    const cb = await canvas.boundingBox();
    const sliderBefore = await page.$eval("#sliders input", (e) => e.value);
    const beforeMap = await srcOf(page, "#decoded");
    await page.mouse.click(cb.x + cb.width * 0.3, cb.y + cb.height * 0.35);
    await new Promise((r) => setTimeout(r, 30));
    await settled(page);
    check((await srcOf(page, "#decoded")) !== beforeMap, "clicking the latent map decodes that point");
    check((await page.$eval("#sliders input", (e) => e.value)) !== sliderBefore, "... and moves the sliders to its code");
    await page.mouse.click(cb.x + cb.width * 0.7, cb.y + cb.height * 0.6);
    await new Promise((r) => setTimeout(r, 30));
    await settled(page);
  }

  // Interpolation: VAE between two test images, GAN between two batch rows (current code each).
  if (info.encoder) {
    await page.$eval('.end[data-end="a"] .end-index', (e) => { e.value = "0"; });
    await page.click('.end[data-end="a"] .end-use-test');
    await page.$eval('.end[data-end="b"] .end-index', (e) => { e.value = "1"; });
    await page.click('.end[data-end="b"] .end-use-test');
  } else {
    await (await page.$$("#batch-grid img"))[1].click();
    await settled(page);
    await page.click('.end[data-end="a"] .end-current');
    await (await page.$$("#batch-grid img"))[7].click();
    await settled(page);
    await page.click('.end[data-end="b"] .end-current');
  }
  await page.$eval("#interp-steps", (e) => { e.value = "7"; });
  await press(page, "#interp-run");
  const lerp = await srcsOf(page, "#interp-strip img");
  check(lerp.length === 7, "an interpolation strip of 7 images");
  check(new Set(lerp).size > 2, "... whose images differ along the path");
  await page.click('input[name="interp-mode"][value="slerp"]');
  await press(page, "#interp-run");
  const slerp = await srcsOf(page, "#interp-strip img");
  check(slerp.length === 7 && slerp[3] !== lerp[3], "the slerp switch gives another path (its middle image differs from lerp's)");
  check(slerp[0] === lerp[0] && slerp[6] === lerp[6], "... between the same two ends");

  // Concept arithmetic: VAE by class names (plus Trouser-like class 1, minus class 0), GAN by rows.
  if (info.encoder) {
    await page.select("#arith-plus", "1");
    await page.select("#arith-minus", "0");
  }
  await press(page, "#arith-run");
  const arith = await srcsOf(page, "#arith-strip img");
  check(arith.length === 5, "an arithmetic strip, one image per scale (0, 0.5, 1, 1.5, 2)");
  check(arith[0] !== arith[4], "... adding 2v changes the image");
  check((await srcsOf(page, "#arith-means img")).length === 2, "... with the two groups' mean images");

  // Traversal of the first unit in the list.
  await press(page, "#trav-run");
  const trav = await srcsOf(page, "#trav-strip img");
  check(trav.length === 9 && trav[0] !== trav[8], "a traversal of one unit, 9 images, the ends differ");

  if (info.encoder) {
    // Outliers: the 8 worst of 300 test images; a click encodes one into the sliders.
    await page.$eval("#score-of", (e) => { e.value = "300"; });
    await press(page, "#score-run");
    const worst = await page.$$("#score-list img");
    check(worst.length === 8, "the 8 worst-scored test images");
    const beforeScore = await srcOf(page, "#decoded");
    await worst[0].click();
    await new Promise((r) => setTimeout(r, 30));
    await settled(page);
    check((await srcOf(page, "#decoded")) !== beforeScore, "clicking an outlier encodes it and decodes its code");
    check((await page.$eval("#encode-caption", (e) => e.textContent)).includes("recon"), "... and shows its scores");
  }
  if (info.conditional) {
    const beforeLabel = await srcOf(page, "#decoded");
    await page.select("#label-select", "3");
    await page.waitForFunction((s) => document.getElementById("decoded").getAttribute("src") !== s, { timeout: 10000 }, beforeLabel);
    await settled(page);
    check(true, "choosing a class re-decodes the code");
  }
  // Bad input in a field: the page says what is wrong (the request is never sent).
  await page.$eval("#arith-scales", (e) => { e.value = "1,x"; });
  await page.click("#arith-run");
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("scales"), { timeout: 5000 });
  check(true, "a bad field is reported on the page");
  await page.$eval("#arith-scales", (e) => { e.value = "0,0.5,1,1.5,2"; });
  await page.$eval("#status", (e) => { e.textContent = ""; });

  const shot = path.join(outDir, `explorer-${name}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  // The first screen alone (the code, the map or the batch, the interpolation), for the README.
  const top = path.join(outDir, `explorer-${name}-top.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: top, clip: { x: 0, y: 0, width: 1400, height: 1000 } });
  console.log(`  screenshots: ${shot}, ${top}`);
  check(problems.length === 0, `no console errors, page errors or failed requests${problems.length ? ": " + problems.join("; ") : ""}`);
  await page.close();
}

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
});
let status = 0;
try {
  for (const t of targets) {
    const eq = t.indexOf("=");
    await testPage(browser, t.slice(0, eq), t.slice(eq + 1));
  }
  console.log("explorer browser test: passed");
} catch (e) {
  console.error(`explorer browser test: FAILED: ${e.message}`);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
